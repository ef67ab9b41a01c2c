"""Exploring images in Jupyter: ``explore(source, patient=1, mask="liver")`` shows a live widget
of three linked planes with windows, overlays and the lesion table
(``pip install 'radpipe[notebook]'``)."""

from radpipe.notebook.explorer import Explorer, explore

__all__ = ["Explorer", "explore"]

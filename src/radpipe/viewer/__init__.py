"""The browser viewer: linked axial / coronal / sagittal panes served from a local ASGI app."""

"""DICOM as radpipe reads it: headers (one pass per file, every frame described), a fast
reader for classic images, pixel decoding, and series assembly (grouping, ordering, geometry,
duplicate policy, warnings).

``headers`` → ``FrameRecord`` per frame; ``fast_header`` parses classic single-frame files
without pydicom; ``pixels`` decodes frames; ``series`` groups, plans and assembles volumes.
"""

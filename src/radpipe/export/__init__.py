"""Writers of radpipe's outputs: DICOM series, and (in later stages) PNG slices and reports."""

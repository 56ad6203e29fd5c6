"""From a folder to pictures with an identity, in the order of the flow: scanning (scan), one read of
a file's bytes and the decoded picture's type (image_file), decoding (images; DICOM in dicom), damage
checks (damage), and whose lesion each file shows (identity, sidecar, identity_sources, body_sites)."""

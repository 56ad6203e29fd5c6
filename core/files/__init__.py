"""From a folder to pictures with an identity: scanning, decoding (DICOM included), damage checks,
the patient's identity and body sites."""

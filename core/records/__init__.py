"""What is kept: the SQLite store, patients and lesions, confirmed diagnoses, follow-up, reports and
provenance."""

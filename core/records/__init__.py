"""What is kept, and what is made from it. The store (store/: its front door ReviewStore over one module per
job: connection, migrations, runs, results, reviews, images, clock, and the queries of patient_rows and
evidence_rows); what the records mean for a clinic: patients (worklist, timelines, filing a run), evidence
(confirmed diagnoses), followup, clinic, provenance, runs (an interrupted run); and the exports made from
them: the run CSV (report, spreadsheet), the printable run reports (html_report, run_report, with
report_pictures and the paged blocks of paged), one patient's report (patient_record -> patient_pages ->
patient_report) and the clinician's page of a bundle (card_figures -> clinician_page)."""

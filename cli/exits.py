"""The command line's exit codes, and what each means (shown under `melascreen --help`)."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES_HELP = """exit codes:
  0  done (files that could not be screened are listed as errors; the run itself succeeded)
  1  the work failed part-way or at the end, e.g. the report or some heat maps could not be written
     (the results are kept in the database), the database failed during the run, or a review could
     not be recorded
  2  nothing was done and nothing was written: a wrong argument or path (--db, report or heat-map
     folder not writable, --threshold out of range, a folder with nothing to screen), or a model bundle
     or results database that is damaged, unsigned or unusable; the message says which file and why
  130  stopped with Ctrl+C"""

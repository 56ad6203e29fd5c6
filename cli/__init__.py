"""The command line: `melascreen-cli`, a face over core beside desktop/."""

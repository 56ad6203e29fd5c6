"""The command line: `melascreen-cli` (`python -m cli`), a face over core beside desktop/.

One job a module: main (parse, run, errors to exit codes), parser (the sub-commands), exits (the codes),
screen, review (queue, decisions, follow-up due), runs, bundle, patient (identities, `report`), evidence
(`outcome`, `audit`); shared by them: opening (bundle and database), heatmaps, progress, terminal (escaping).
"""

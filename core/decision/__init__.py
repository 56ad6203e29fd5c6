"""What a result means: the vocabulary users read, result types, the gate, the intake check's finding,
and the cascade's stop margins."""

"""Operator commands, run by hand from a workstation (never deployed code paths): `python -m chalicelib.ops.<name>`."""

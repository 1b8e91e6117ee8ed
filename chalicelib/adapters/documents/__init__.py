"""Printable documents (customs declarations, label helpers) drawn as PDF with core fonts only."""

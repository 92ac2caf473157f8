"""Denials: claims.remittance -> denials.rework, plus coding and scrubber holds."""

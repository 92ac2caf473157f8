"""Claims: encounters.coded -> claims.submitted, or a scrubber hold on denials.rework."""

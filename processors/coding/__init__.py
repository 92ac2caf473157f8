"""Coding: ehr.encounters -> encounters.coded, or a coding hold on denials.rework."""

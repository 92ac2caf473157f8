"""Adjudication: claims.submitted -> claims.remittance, as a simulated payer."""

"""Adapters that bring EHR feeds and payer files into the pipeline."""

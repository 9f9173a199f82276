"""Types only: CRD spec/status models, group/version/plurals, condition names.

Imported by every other layer; imports nothing of padlock.
"""

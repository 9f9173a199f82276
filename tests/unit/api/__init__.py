"""Tests of padlock.api: models, durations, reasons, the CRD generator and the examples."""

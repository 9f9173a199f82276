"""Network front ends, independent of each other: ca_http, ocsp, svid, acme.

Started by the CLI (`padlock ca serve`, `padlock ocsp serve`, ...).
"""

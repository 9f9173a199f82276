"""padlock: a Kubernetes-native private PKI.

The import package for every padlock process (operator, CA, OCSP responder, SVID agent).
Sub-packages follow the layers of DESIGN.md; see the README for a tour.
"""

__version__ = "0.1.0"

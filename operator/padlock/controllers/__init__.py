"""kopf handlers, thin: decode spec, call padlock.ca.client / padlock.kube, return status.

Loaded by `padlock operator`.
"""

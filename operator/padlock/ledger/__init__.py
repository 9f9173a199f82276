"""The issuance database: schema, migrations and queries on SQLite (default) or PostgreSQL.

Called by the CA pipeline and the OCSP responder (read only).
"""

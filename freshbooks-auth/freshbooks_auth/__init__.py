"""freshbooks-auth: the one owner of FreshBooks OAuth for the tap and the webhook bridge.

Distribution ``freshbooks-warehouse-auth``. It holds the encrypted token store and its backends
(file, PostgreSQL, S3), the Fernet helpers, refresh with rotation, the rule for an API 401 and the
authorization-code login. No other package sees a token value: they ask for an ``Authorization``
header (:mod:`freshbooks_auth.unauthorized`) and report a 401 back.
"""

#: the one version source: pyproject.toml reads it ([tool.hatch.version])
__version__ = "0.1.0"

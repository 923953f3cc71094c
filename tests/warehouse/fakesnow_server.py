"""``fakesnow -s`` for tests/warehouse/test_snowflake_fakesnow.py, run in the fakesnow venv, with
one stand-in difference from Snowflake removed: fakesnow 0.12.1 rewrites every SUM/AVG/...
argument that is not a bare CAST into ``TRY_CAST(... AS DOUBLE)`` (transforms
``numeric_agg_implicit_cast``, for Snowflake's implicit VARCHAR -> number cast), so
``SUM(CASE ... NUMBER(38,27) END)`` came back as a float (measured: 0.1 + 0.2 ->
0.30000000000000004). Snowflake sums NUMBER(38,27) exactly; without the rewrite DuckDB does too.
The LookML never sums text, and a query that did would now fail instead of passing.

    <fakesnow venv>/bin/python fakesnow_server.py -s -p PORT
"""

import sys

import fakesnow.transforms
from fakesnow.cli import main

fakesnow.transforms.numeric_agg_implicit_cast = lambda expression: expression

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

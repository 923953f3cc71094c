#########################################################{
# PURPOSE
# The FreshBooks finance model: revenue, receivables, payables, expenses, general ledger and
# pipeline freshness over the tables the tap-freshbooks pipeline loads (one table per stream).
#
# SOURCES
# manifest.lkml (connection, schema, fiscal year), components/ (datagroup), views/ (generated
# base views + derived views), refinements/ (measures and business logic), explores/, dashboards/.
#
# HOW TO USE
# Set CONNECTION_NAME (and SCHEMA_NAME if not `freshbooks`) in the manifest. Results are cached
# until the next load (datagroup freshbooks_load).
#########################################################}

connection: "@{CONNECTION_NAME}"

include: "/components/*.lkml"
include: "/views/*.view.lkml"
include: "/refinements/*.view.lkml"
include: "/explores/*.explore.lkml"
include: "/dashboards/*.dashboard.lookml"

persist_with: freshbooks_load
week_start_day: monday

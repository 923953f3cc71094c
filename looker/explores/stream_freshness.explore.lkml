#########################################################{
# PURPOSE
# Pipeline freshness: last load, last extraction and last webhook per stream.
#
# SOURCES
# stream_freshness (derived, one row per stream table).
#########################################################}

include: "/views/stream_freshness_sdt.view.lkml"

explore: stream_freshness {
  label: "Pipeline Freshness"
  description: "When each FreshBooks stream was last loaded, extracted and webhook-triggered; row counts."
  persist_for: "5 minutes"
}

# Pipeline freshness: when each stream was last loaded / extracted / webhook-triggered.
- dashboard: freshness
  title: "9. Pipeline Freshness"
  description: "Last load time per stream, time since, row counts; newest and stalest load."
  layout: newspaper
  preferred_viewer: dashboards-next
  refresh: 5 minutes
  elements:
  - name: newest_load
    title: "Newest Load (UTC)"
    model: freshbooks
    explore: stream_freshness
    type: single_value
    fields: [stream_freshness.newest_load]
    row: 0
    col: 0
    width: 8
    height: 3
  - name: stalest_load
    title: "Stalest Stream's Last Load (UTC)"
    model: freshbooks
    explore: stream_freshness
    type: single_value
    fields: [stream_freshness.oldest_load]
    row: 0
    col: 8
    width: 8
    height: 3
  - name: total_rows
    title: "Rows in the Warehouse"
    model: freshbooks
    explore: stream_freshness
    type: single_value
    fields: [stream_freshness.total_rows]
    row: 0
    col: 16
    width: 8
    height: 3
  - name: streams
    title: "Last Load per Stream"
    model: freshbooks
    explore: stream_freshness
    type: looker_grid
    fields: [stream_freshness.stream, stream_freshness.last_loaded_time, stream_freshness.minutes_since_last_load, stream_freshness.last_extracted_time, stream_freshness.last_webhook_time, stream_freshness.row_count, stream_freshness.deleted_rows]
    sorts: [stream_freshness.last_loaded_time]
    limit: 100
    row: 3
    col: 0
    width: 24
    height: 10

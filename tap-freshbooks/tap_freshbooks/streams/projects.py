"""Project-family streams: ``/projects``, ``/comments``, ``/timetracking`` under a business id.

Flat bodies with paging in ``meta``; filters are bare parameters (``updated_since``), and the
accounting spelling ``search[...]`` is silently ignored by FreshBooks, so never use it here.
Timestamps are UTC (naive ``YYYY-MM-DDTHH:MM:SS`` for projects, ``...Z`` for time entries).
"""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th

from tap_freshbooks import envelopes, incremental
from tap_freshbooks.schema_objects import (
    any_array,
    any_object,
    boolean,
    date,
    decimal,
    integer,
    schema,
    string,
    timestamp,
)
from tap_freshbooks.streams.base import FreshBooksStream
from tap_freshbooks.streams.fields import fields


class BusinessStream(FreshBooksStream):
    envelope = envelopes.PROJECT
    business_scoped = True


class ProjectsStream(BusinessStream):
    """Projects, incremental on ``updated_at`` with the server's ``updated_since`` filter."""

    name = "projects"
    path = "/projects/business/{business_id}/projects"
    single_path = "/projects/business/{business_id}/project/{id}"
    list_key, single_key = "projects", "project"
    strategy = incremental.UpdatedFilter(server="since")
    replication_key = "updated_at"
    utc_fields = ("created_at", "updated_at")
    is_sorted = False
    schema = schema(
        *fields(string, "title", "description"),
        integer("client_id"),
        *fields(boolean, "internal", "active", "complete", "sample"),
        integer("budget"),
        *fields(decimal, "fixed_price", "rate"),
        string("billing_method"),
        string("project_type", "fixed_price or hourly_rate"),
        integer("project_manager_id"),
        boolean("is_project_manager"),
        date("due_date"),
        integer("logged_duration", "Seconds logged"),
        decimal("billed_amount"),
        string("billed_status"),
        integer("retainer_id"),
        decimal("expense_markup"),
        integer("group_id"),
        any_array("services"),
        timestamp("created_at"),
        timestamp("updated_at", "Last change (UTC)"),
        business_scoped=True,
    )


class ServicesStream(BusinessStream):
    """Billable services. No change timestamp or filter: snapshot + fingerprints."""

    name = "services"
    path = "/comments/business/{business_id}/services"
    single_path = "/comments/business/{business_id}/service/{id}"
    list_key, single_key = "services", "service"
    strategy = incremental.Snapshot()
    schema = schema(
        string("name"),
        boolean("billable"),
        integer("vis_state"),
        business_scoped=True,
    )


class TimeEntriesStream(BusinessStream):
    """Time entries of the whole team (``team=true``, deleted ones included).

    Records carry no change timestamp, but the server filters on one (``updated_since``): each run
    asks for entries changed since the previous run started (minus a day of overlap) and emits
    what changed (fingerprints). The Singer catalog shows FULL_TABLE because there is no key field.
    """

    name = "time_entries"
    path = "/timetracking/business/{business_id}/time_entries"
    single_path = "/timetracking/business/{business_id}/time_entries/{id}"
    list_key, single_key = "time_entries", "time_entry"
    strategy = incremental.ServerSince()
    extra_params: t.ClassVar[dict[str, t.Any]] = {"team": "true", "include_deleted": "true"}
    utc_fields = ("started_at", "created_at")
    schema = schema(
        integer("identity_id"),
        boolean("is_logged"),
        *fields(timestamp, "started_at", "created_at"),
        string("local_started_at", "Wall time where it was logged"),
        string("local_timezone"),
        integer("duration", "Seconds"),
        *fields(integer, "client_id", "project_id", "service_id", "task_id"),
        string("note"),
        *fields(boolean, "active", "billable", "billed", "internal"),
        integer("retainer_id"),
        any_object("timer"),
        th.Property("pending_client", th.CustomType({"type": ["object", "string", "null"]})),
        th.Property("pending_project", th.CustomType({"type": ["object", "string", "null"]})),
        th.Property("pending_task", th.CustomType({"type": ["object", "string", "null"]})),
        business_scoped=True,
    )

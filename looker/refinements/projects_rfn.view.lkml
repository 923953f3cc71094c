#########################################################{
# PURPOSE
# Projects: revenue and hours by project.
#
# SOURCES
# Refines view projects (views/projects_base.view.lkml).
#
# REFERENCED BY
# Explores invoices (via invoice_lines.modern_project_id), expenses, time_entries.
#########################################################}

include: "/views/projects_base.view.lkml"

view: +projects {
  label: "Projects"

  dimension: title {
    label: "Project"
    description: "Project title."
  }

  measure: count {
    label: "Projects"
    description: "Number of distinct projects."
    type: count
  }
}

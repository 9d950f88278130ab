"""The calendar: each workload month by month over one roadmap."""

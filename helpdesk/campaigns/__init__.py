"""Marketing announcements (issue #8 §3): a message in one or both languages to a segment's opted-in
leads or customers, previewed, sent now or at a set time, with a report."""

"""User feedback: thumbs, revisions and comments on served answers, kept durably.

`records` holds the record shapes, `store` the SQLite store (`FeedbackStore`), `jsonl` the
JSON-lines import and export.
"""

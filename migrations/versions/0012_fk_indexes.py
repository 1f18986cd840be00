"""indexes on the foreign keys whose parent rows the inbound-mail batch inserts

SQLite checks the batch's foreign keys at COMMIT (PRAGMA defer_foreign_keys). While a check is
outstanding, every row inserted into a parent table (customers, messages, tickets, outbound and
inbound mail) looks up the child rows that refer to it: by an index, or else by scanning the whole
child table. Without these indexes a new customer scanned all of messages and audit_events.
Partial (only set values) where the column is mostly NULL; the same on PostgreSQL.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# (table, index, column, partial)
INDEXES = [
    ("customers", "ix_customers_merged_into", "merged_into_id", True),
    ("messages", "ix_messages_author_customer", "author_customer_id", True),
    ("audit_events", "ix_audit_actor_customer", "actor_customer_id", True),
    ("inbound_messages", "ix_inbound_message_row", "message_row_id", True),
    ("mail_message_ids", "ix_mail_message_ids_message_row", "message_row_id", True),
    ("mail_message_ids", "ix_mail_message_ids_inbound", "inbound_id", True),
    ("outbound_mails", "ix_outbound_message_row", "message_row_id", True),
    ("auto_mail_log", "ix_auto_mail_outbound", "outbound_id", True),
    ("notifications", "ix_notifications_ticket", "ticket_id", True),
    ("csat_responses", "ix_csat_customer", "customer_id", True),
    ("cashback_claims", "ix_cashback_claims_customer", "customer_id", False),
    ("cashback_claims", "ix_cashback_claims_requested_by_customer", "requested_by_customer_id", True),
    ("repair_quotes", "ix_repair_quotes_customer", "customer_id", False),
    ("invoices", "ix_invoices_ticket", "ticket_id", True),
    ("payments", "ix_payments_customer", "customer_id", True),
    ("announcement_deliveries", "ix_announcement_deliveries_customer", "customer_id", True),
]


def upgrade():
    for table, name, column, partial in INDEXES:
        where = sa.text(f"{column} IS NOT NULL") if partial else None
        op.create_index(name, table, [column], unique=False, sqlite_where=where, postgresql_where=where)


def downgrade():
    for table, name, _column, _partial in reversed(INDEXES):
        op.drop_index(name, table_name=table)

"""Import every feature's models so the metadata (and Alembic) sees them all."""
from .auth.models import ApiToken, User, UserRole  # noqa: F401
from .billing.models import (  # noqa: F401
    BankStatement, BankStatementLine, Invoice, InvoiceLine, InvoiceSequence, Payment,
)
from .campaigns.models import Campaign  # noqa: F401
from .claims.models import CashbackClaim  # noqa: F401
from .customers.models import Customer, CustomerEmail, DataRequest, Organisation  # noqa: F401
from .jobs import OutboxJob  # noqa: F401
from .leads.models import Lead, LeadActivity, LeadImport, LeadTask  # noqa: F401
from .mail.models import (  # noqa: F401
    AutoMailLog, InboundMessage, Mailbox, MailboxFolderState, MailMessageId, OutboundMail, SenderBlock,
)
from .maintenance.models import MaintenanceTarget, MaintenanceWindow, TicketMaintenance  # noqa: F401
from .repairs.models import RepairQuote, RepairQuoteLine  # noqa: F401
from .sales.models import Offer, OfferLine, Order, OrderLine, Voucher, VoucherUse  # noqa: F401
from .subscriptions.models import AnnouncementDelivery, ConsentEvent, Subscription  # noqa: F401
from .sla.models import (  # noqa: F401
    BusinessCalendar, CalendarDay, CsatResponse, Notification, SlaAlert, SlaClock, SlaPolicy, SlaRule, SweepRun,
)
from .warranty.models import (  # noqa: F401
    ContractPlan, EligibilityDecision, IssueCategory, OwnedItem, Product, RenewalNotice, ServiceContract,
)
from .tickets.models import (  # noqa: F401
    Attachment, AuditEvent, CannedResponse, Counter, Message, Queue, QueueMember, Tag, Ticket, TicketCount,
)

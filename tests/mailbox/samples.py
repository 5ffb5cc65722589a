"""Real-looking mails the organiser's mailbox receives, built around one of our sent messages.

Each follows what that client or mail server writes (structure, headers, PRODID, the calendar part's
place and encoding), modelled on messages these programs send: Outlook (Exchange), Gmail, Apple
Calendar and Thunderbird answering an invitation; bounces from Postfix (DSN), Exchange (DSN with its
text), Gmail (DSN) and qmail (plain text with the message below); an Exchange out-of-office; a COUNTER.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import quopri
from email.message import EmailMessage

import icalendar

WHEN = "Mon, 10 Jun 2024 09:12:44 +0200"


def invitation_parts(invite: EmailMessage) -> tuple[str, int, str, str]:
    """UID, SEQUENCE, ORGANIZER and ATTENDEE address of one of our invitations."""
    for part in invite.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            event = next(iter(icalendar.Calendar.from_ical(payload).walk("VEVENT")))
            attendee = str(event["attendee"])[7:]
            return str(event["uid"]), int(event["sequence"]), str(event["organizer"])[7:], attendee
    raise AssertionError("no calendar part")


def _reply_ics(invite: EmailMessage, partstat: str, prodid: str, *, sequence: int | None = None,
               method: str = "REPLY", attendee: str | None = None, extra: str = "") -> str:  # fmt: skip
    uid, seq, organizer, invited = invitation_parts(invite)
    who = attendee or invited
    return "\r\n".join([
        "BEGIN:VCALENDAR", f"PRODID:{prodid}", "VERSION:2.0", f"METHOD:{method}", "BEGIN:VEVENT",
        f"ATTENDEE;PARTSTAT={partstat};CN=Teilnehmende Person:mailto:{who}" if partstat else f"ATTENDEE:mailto:{who}",
        f"ORGANIZER;CN=Netzwerkstelle Städtepartnerschaften:mailto:{organizer}",
        "DTSTART;TZID=Europe/Berlin:20240619T100000", "DTEND;TZID=Europe/Berlin:20240619T130000",
        f"UID:{uid}", f"SEQUENCE:{seq if sequence is None else sequence}", "DTSTAMP:20240610T071244Z",
        "SUMMARY:Abschlussveranstaltung des Reallabors", *([extra] if extra else []), "END:VEVENT",
        "END:VCALENDAR", "",
    ])  # fmt: skip


def _b64(text: str) -> str:
    return base64.encodebytes(text.encode("utf-8")).decode("ascii")


def outlook_reply(
    invite: EmailMessage, partstat: str = "ACCEPTED", *, sender: str | None = None, sequence: int | None = None,
    attendee: str | None = None, uid: str | None = None,
) -> bytes:  # fmt: skip
    """Outlook/Exchange: multipart/alternative, text/calendar method=REPLY in base64, German subject, MAILTO upper."""
    invited_uid, _, organizer, invited = invitation_parts(invite)
    attendee = attendee or invited
    subject = {"ACCEPTED": "Angenommen", "DECLINED": "Abgelehnt", "TENTATIVE": "Mit Vorbehalt angenommen"}[partstat]
    ics = _reply_ics(invite, partstat, "Microsoft Exchange Server 2010", sequence=sequence, attendee=attendee)
    ics = ics.replace("mailto:", "MAILTO:").replace(f"UID:{invited_uid}", f"UID:{uid or invited_uid}")
    digest = hashlib.sha256(ics.encode()).hexdigest()[:20].upper()
    return f"""Received: from AM6PR02MB4325.eurprd02.prod.outlook.com ([fe80::1]) by AM6PR02MB4325 with mapi id
 15.20.7633.021;
 Mon, 10 Jun 2024 07:12:44 +0000
From: Anke Brockmann <{sender or attendee}>
To: Netzwerkstelle =?iso-8859-1?Q?St=E4dtepartnerschaften?= <{organizer}>
Subject: {subject}: Abschlussveranstaltung des Reallabors
Thread-Topic: Abschlussveranstaltung des Reallabors
Thread-Index: AQHatQ2V1n0qZ3J0T0uLJ2r1Pq9ZbQ==
Date: {WHEN}
Message-ID: <AM6PR02MB4325{digest}@AM6PR02MB4325.eurprd02.prod.outlook.com>
Accept-Language: de-DE, en-US
Content-Language: de-DE
X-MS-Has-Attach:
X-MS-TNEF-Correlator:
x-ms-exchange-calendar-series-instance-id: BAAAAIIA4AB0xbcQGoLgCAAAAAA=
Content-Type: multipart/alternative;
	boundary="_000_AM6PR02MB43251B0F2C3E5D8A9B7C6D5E4F3A2AM6PR02MB4325eurp_"
MIME-Version: 1.0

--_000_AM6PR02MB43251B0F2C3E5D8A9B7C6D5E4F3A2AM6PR02MB4325eurp_
Content-Type: text/plain; charset="iso-8859-1"
Content-Transfer-Encoding: quoted-printable

{quopri.encodestring("Ich nehme gern teil.".encode("latin-1")).decode()}

--_000_AM6PR02MB43251B0F2C3E5D8A9B7C6D5E4F3A2AM6PR02MB4325eurp_
Content-Type: text/calendar; charset="utf-8"; method=REPLY
Content-Transfer-Encoding: base64

{_b64(ics)}
--_000_AM6PR02MB43251B0F2C3E5D8A9B7C6D5E4F3A2AM6PR02MB4325eurp_--
""".replace("\n", "\r\n").encode("utf-8")


def gmail_reply(invite: EmailMessage, partstat: str = "ACCEPTED", *, sender: str | None = None) -> bytes:
    """Gmail: mixed( alternative( plain, html, text/calendar REPLY ), invite.ics as application/ics )."""
    _, _, organizer, attendee = invitation_parts(invite)
    ics = _reply_ics(invite, partstat, "-//Google Inc//Google Calendar 70.9054//EN")
    word = {"ACCEPTED": "Accepted", "DECLINED": "Declined", "TENTATIVE": "Tentatively Accepted"}[partstat]
    return f"""MIME-Version: 1.0
Date: {WHEN}
Reply-To: {sender or attendee}
Sender: Google Calendar <calendar-notification@google.com>
Auto-Submitted: auto-generated
Message-ID: <000000000000a1b2c3061a9f7e2d@google.com>
Subject: Invitation: {word}: Abschlussveranstaltung des Reallabors @ Wed 19 Jun 2024 10am - 1pm (CEST)
From: {sender or attendee}
To: {organizer}
Content-Type: multipart/mixed; boundary="000000000000a1b2c3061a9f7e2c"

--000000000000a1b2c3061a9f7e2c
Content-Type: multipart/alternative; boundary="000000000000a1b2c3061a9f7e2a"

--000000000000a1b2c3061a9f7e2a
Content-Type: text/plain; charset="UTF-8"; format=flowed; delsp=yes

{attendee} has {word.lower()} this invitation.

--000000000000a1b2c3061a9f7e2a
Content-Type: text/html; charset="UTF-8"

<p>{attendee} has {word.lower()} this invitation.</p>

--000000000000a1b2c3061a9f7e2a
Content-Type: text/calendar; charset="UTF-8"; method=REPLY
Content-Transfer-Encoding: 7bit

{ics}
--000000000000a1b2c3061a9f7e2a--

--000000000000a1b2c3061a9f7e2c
Content-Type: application/ics; name="invite.ics"
Content-Disposition: attachment; filename="invite.ics"
Content-Transfer-Encoding: base64

{_b64(ics)}
--000000000000a1b2c3061a9f7e2c--
""".replace("\n", "\r\n").encode("utf-8")


def apple_reply(invite: EmailMessage, partstat: str = "DECLINED") -> bytes:
    """Apple Calendar (iCloud): mixed( plain, text/calendar attachment iCal-….ics, quoted-printable )."""
    _, _, organizer, attendee = invitation_parts(invite)
    ics = _reply_ics(invite, partstat, "-//Apple Inc.//iPhone 17.5.1//EN")
    quoted = quopri.encodestring(ics.replace("\r\n", "\n").encode("utf-8")).decode("ascii")
    return f"""From: Olena Koval <{attendee}>
Content-Type: multipart/mixed; boundary="Apple-Mail=_5A3C1D2E-0F4B-4C6D-9E8F-7A6B5C4D3E2F"
Mime-Version: 1.0 (1.0)
Subject: Abgelehnt: Abschlussveranstaltung des Reallabors
Date: {WHEN}
Message-Id: <5A3C1D2E-0F4B-4C6D-9E8F-7A6B5C4D3E2F@icloud.com>
To: {organizer}
X-Mailer: iPhone Mail (21F90)

--Apple-Mail=_5A3C1D2E-0F4B-4C6D-9E8F-7A6B5C4D3E2F
Content-Transfer-Encoding: 7bit
Content-Type: text/plain;
	charset=us-ascii

Olena Koval has declined your event.

--Apple-Mail=_5A3C1D2E-0F4B-4C6D-9E8F-7A6B5C4D3E2F
Content-Disposition: attachment;
	filename=iCal-20240610-091244.ics
Content-Type: text/calendar;
	name=iCal-20240610-091244.ics;
	method=REPLY;
	charset=utf-8
Content-Transfer-Encoding: quoted-printable

{quoted}
--Apple-Mail=_5A3C1D2E-0F4B-4C6D-9E8F-7A6B5C4D3E2F--
""".replace("\n", "\r\n").encode("utf-8")


def thunderbird_reply(invite: EmailMessage, partstat: str = "TENTATIVE") -> bytes:
    """Thunderbird (Lightning): mixed( plain, text/calendar method=REPLY inline, base64 )."""
    _, _, organizer, attendee = invitation_parts(invite)
    ics = _reply_ics(invite, partstat, "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN")
    return f"""Message-ID: <8f0b7c2e-3d4a-4b5c-9e6f-1a2b3c4d5e6f@unna.example>
Date: {WHEN}
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
From: =?UTF-8?Q?J=C3=B6rg_Pfundheller?= <{attendee}>
To: {organizer}
Subject: Vorbehaltlich angenommen: Abschlussveranstaltung des Reallabors
Content-Type: multipart/mixed; boundary="------------Y3n0dW1bE7pX9qK2rL4sT6uV"

This is a multi-part message in MIME format.
--------------Y3n0dW1bE7pX9qK2rL4sT6uV
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

Jörg Pfundheller hat Ihre Einladung vorbehaltlich angenommen.

--------------Y3n0dW1bE7pX9qK2rL4sT6uV
Content-Type: text/calendar; method=REPLY; charset=UTF-8
Content-Transfer-Encoding: base64

{_b64(ics)}
--------------Y3n0dW1bE7pX9qK2rL4sT6uV--
""".replace("\n", "\r\n").encode("utf-8")


def counter(invite: EmailMessage) -> bytes:
    """Outlook "Neue Zeit vorschlagen": METHOD:COUNTER with the proposed DTSTART/DTEND."""
    _, _, organizer, attendee = invitation_parts(invite)
    ics = _reply_ics(invite, "TENTATIVE", "Microsoft Exchange Server 2010", method="COUNTER",
                     extra="COMMENT:Geht es auch um 14 Uhr?")
    ics = ics.replace("T100000", "T140000").replace("T130000", "T170000")
    return f"""From: Kim Schmidt <{attendee}>
To: {organizer}
Subject: Neuer Zeitvorschlag: Abschlussveranstaltung des Reallabors
Date: {WHEN}
Message-ID: <AM6PR02MB4325COUNTER0001@AM6PR02MB4325.eurprd02.prod.outlook.com>
Content-Type: text/calendar; charset="utf-8"; method=COUNTER
Content-Transfer-Encoding: base64
MIME-Version: 1.0

{_b64(ics)}""".replace("\n", "\r\n").encode("utf-8")


def _headers_of(original: EmailMessage) -> str:
    keep = ("From", "To", "Subject", "Date", "Message-ID")
    return "\n".join(f"{name}: {original[name]}" for name in keep if original[name])


def postfix_dsn(original: EmailMessage, *, status: str = "5.1.1", when: str | None = None,
                message_id: str = "<20240610071244.3F2A1C0123@mail.auslandsgesellschaft.de>") -> bytes:  # fmt: skip
    """Postfix: multipart/report; report-type=delivery-status with text/rfc822-headers."""
    rcpt = str(original["To"].addresses[0].addr_spec)
    permanent = status.startswith("5")
    action = "failed" if permanent else "delayed"
    diagnostic = (
        "smtp; 550 5.1.1 <{0}>: Recipient address rejected: User unknown in virtual mailbox table"
        if permanent else "smtp; 452 4.2.2 <{0}>: Mailbox full"
    ).format(rcpt)  # fmt: skip
    return f"""Date: {when or WHEN}
From: MAILER-DAEMON@mail.auslandsgesellschaft.de (Mail Delivery System)
Subject: {"Undelivered Mail Returned to Sender" if permanent else "Delayed Mail (still being retried)"}
To: becker@auslandsgesellschaft.de
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="3F2A1C0123.1718003564/mail.auslandsgesellschaft.de"
Content-Transfer-Encoding: 8bit
Message-Id: {message_id}

This is a MIME-encapsulated message.

--3F2A1C0123.1718003564/mail.auslandsgesellschaft.de
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.auslandsgesellschaft.de.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{rcpt}>: host mx.{rcpt.split("@")[1]}[192.0.2.25] said: {diagnostic[6:]}

--3F2A1C0123.1718003564/mail.auslandsgesellschaft.de
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.auslandsgesellschaft.de
X-Postfix-Queue-ID: 3F2A1C0123
X-Postfix-Sender: rfc822; becker@auslandsgesellschaft.de
Arrival-Date: Mon, 10 Jun 2024 09:12:40 +0200 (CEST)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.{rcpt.split("@")[1]}
Diagnostic-Code: {diagnostic}

--3F2A1C0123.1718003564/mail.auslandsgesellschaft.de
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{_headers_of(original)}

--3F2A1C0123.1718003564/mail.auslandsgesellschaft.de--
""".replace("\n", "\r\n").encode("utf-8")


def exchange_dsn(original: EmailMessage) -> bytes:
    """Exchange Online NDR: multipart/report with an HTML explanation and the original as message/rfc822."""
    rcpt = str(original["To"].addresses[0].addr_spec)
    return f"""From: Microsoft Outlook <postmaster@{rcpt.split("@")[1]}>
To: <becker@auslandsgesellschaft.de>
Date: {WHEN}
Content-Type: multipart/report; report-type=delivery-status;
	boundary="0d1b9f2e-77c4-4d7e-bd0f-6f3a2c1b0a99"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: de-DE
Message-ID: <7c1d2e3f-aaaa-4bbb-8ccc-1234567890ab@DB9PR02MB7306.eurprd02.prod.outlook.com>
In-Reply-To: {original["Message-ID"]}
Subject: Unzustellbar: {original["Subject"]}
Auto-Submitted: auto-replied
MIME-Version: 1.0

--0d1b9f2e-77c4-4d7e-bd0f-6f3a2c1b0a99
Content-Type: text/html; charset="us-ascii"

<html><body><p>Ihre Nachricht hat {rcpt} nicht erreicht.</p>
<p>Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'</p>
</body></html>

--0d1b9f2e-77c4-4d7e-bd0f-6f3a2c1b0a99
Content-Type: message/delivery-status

Reporting-MTA: dns;DB9PR02MB7306.eurprd02.prod.outlook.com
Received-From-MTA: dns;mail.auslandsgesellschaft.de
Arrival-Date: Mon, 10 Jun 2024 07:12:40 +0000

Final-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup

--0d1b9f2e-77c4-4d7e-bd0f-6f3a2c1b0a99
Content-Type: message/rfc822

{_headers_of(original)}
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

(Nachricht)

--0d1b9f2e-77c4-4d7e-bd0f-6f3a2c1b0a99--
""".replace("\n", "\r\n").encode("utf-8")


def gmail_dsn(original: EmailMessage) -> bytes:
    """Gmail's "Address not found": multipart/report, delivery-status, the original as message/rfc822."""
    rcpt = str(original["To"].addresses[0].addr_spec)
    return f"""Delivered-To: becker@auslandsgesellschaft.de
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: becker@auslandsgesellschaft.de
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: {original["Message-ID"]}
In-Reply-To: {original["Message-ID"]}
X-Failed-Recipients: {rcpt}
Message-ID: <666f1a2b.050a0220.1c2d3.abcdGMR@mx.google.com>
Date: {WHEN}
MIME-Version: 1.0
Content-Type: multipart/report; boundary="00000000000012ab34cd061a9f7e2b"; report-type=delivery-status

--00000000000012ab34cd061a9f7e2b
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to {rcpt} because the address couldn't be found, or is unable to receive mail.

The response from the remote server was:
550 5.1.1 The email account that you tried to reach does not exist.

--00000000000012ab34cd061a9f7e2b
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; becker@auslandsgesellschaft.de
Arrival-Date: Mon, 10 Jun 2024 00:12:40 -0700 (PDT)

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:4013:c00::1a, the server for the domain gmail.com.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.
Last-Attempt-Date: Mon, 10 Jun 2024 00:12:44 -0700 (PDT)

--00000000000012ab34cd061a9f7e2b
Content-Type: message/rfc822

{_headers_of(original)}

(Nachricht)

--00000000000012ab34cd061a9f7e2b--
""".replace("\n", "\r\n").encode("utf-8")


def qmail_bounce(original: EmailMessage) -> bytes:
    """qmail: one text/plain message, the failure in prose, the returned message below a marker line."""
    rcpt = str(original["To"].addresses[0].addr_spec)
    return f"""Date: {WHEN}
From: MAILER-DAEMON@mx.{rcpt.split("@")[1]}
To: becker@auslandsgesellschaft.de
Subject: failure notice
Message-ID: <20240610071244.12345.qmail@mx.{rcpt.split("@")[1]}>

Hi. This is the qmail-send program at mx.{rcpt.split("@")[1]}.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <becker@auslandsgesellschaft.de>
{_headers_of(original)}

(Nachricht)
""".replace("\n", "\r\n").encode("utf-8")


def out_of_office(original: EmailMessage) -> bytes:
    """Exchange "Automatische Antwort" (RFC 3834 Auto-Submitted, X-Auto-Response-Suppress)."""
    rcpt = str(original["To"].addresses[0].addr_spec)
    return f"""From: {rcpt}
To: becker@auslandsgesellschaft.de
Subject: Automatische Antwort: {original["Subject"]}
Date: {WHEN}
Message-ID: <ooo-0001@{rcpt.split("@")[1]}>
In-Reply-To: {original["Message-ID"]}
Auto-Submitted: auto-generated
X-Auto-Response-Suppress: All
X-MS-Exchange-Inbox-Rules-Loop: {rcpt}
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"

Ich bin bis zum 24. Juni nicht im Büro. In dringenden Fällen wenden Sie sich bitte an das Bürgerbüro.
""".replace("\n", "\r\n").encode("utf-8")


def unsubscribe_mail(original: EmailMessage, *, sender: str | None = None, token: str | None = None) -> bytes:
    """What Apple Mail's "Unsubscribe" sends: a new mail to the List-Unsubscribe mailto, its subject kept."""
    mailto = str(original["List-Unsubscribe"]).split("<mailto:", 1)[1].rstrip(">")
    address, _, query = mailto.partition("?")
    subject = query.removeprefix("subject=").replace("%20", " ")
    if token is not None:
        subject = f"unsubscribe {token}"
    rcpt = sender or str(original["To"].addresses[0].addr_spec)
    return f"""From: {rcpt}
To: {address}
Subject: {subject}
Date: {WHEN}
Message-ID: <unsubscribe-{hashlib.sha256((rcpt + subject).encode()).hexdigest()[:16]}@{rcpt.split("@")[1]}>
X-Mailer: Apple Mail (2.3774.600.62)
Mime-Version: 1.0 (Mac OS X Mail 16.0)
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

This message was automatically generated by Mail to unsubscribe from a mailing list.
""".replace("\n", "\r\n").encode("utf-8")


def human(number: int = 1) -> bytes:
    return f"""From: Anke Brockmann <brockmann@dortmund.example>
To: becker@auslandsgesellschaft.de
Subject: Frage zur Abschlussveranstaltung {number}
Date: {WHEN}
Message-ID: <frage-{number}@dortmund.example>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Guten Tag Frau Becker, kann ich eine Kollegin mitbringen?
""".replace("\n", "\r\n").encode("utf-8")


def malformed() -> bytes:
    """A multipart without its closing boundary, a broken base64 calendar part and a header without a value."""
    return b"""From: <<<broken@@example
To: becker@auslandsgesellschaft.de
Subject: =?utf-8?B?broken
Date: not a date
Message-ID: <malformed-1@example>
Content-Type: multipart/mixed; boundary="x"
X-Empty:

--x
Content-Type: text/calendar; method=REPLY
Content-Transfer-Encoding: base64

!!!!not base64 at all!!!!
--x
Content-Type: message/delivery-status

Final-Recipient
""".replace(b"\n", b"\r\n")


def dated(moment: dt.datetime) -> str:
    """An RFC 5322 date for a sample (temporary bounces on different days)."""
    from email.utils import format_datetime

    return format_datetime(moment)

"""A git merge driver for the gettext catalogs: the union of both sides' messages; a translation changed on
one side only wins, one changed on both keeps ours.

Set up once per clone: git config merge.pounion.driver ".venv/bin/python scripts/merge_po.py %O %A %B" and
git config merge.keepours.driver true (see .gitattributes); after a merge run
`python -m reallabor_mail.i18n.catalogs update`, which re-extracts and recompiles the .mo files.
"""
import sys

from babel.messages.pofile import read_po, write_po

_, base_path, ours, theirs = sys.argv
with open(ours, "rb") as f:
    a = read_po(f)
with open(theirs, "rb") as f:
    b = read_po(f)
with open(base_path, "rb") as f:
    base = read_po(f)
for msg in b:
    if not msg.id:
        continue
    mine = a.get(msg.id, msg.context)
    if mine is None:
        a.add(msg.id, msg.string, msg.locations, msg.flags, msg.auto_comments, msg.user_comments,
              msg.previous_id, msg.lineno, msg.context)
    else:
        empty = (not mine.string) or (isinstance(mine.string, (tuple, list)) and not any(mine.string))
        before = base.get(msg.id, msg.context)
        changed_there = before is not None and before.string == mine.string and msg.string != before.string
        if (empty or changed_there) and msg.string:
            mine.string = msg.string
            mine.flags.discard("fuzzy")
with open(ours, "wb") as f:
    write_po(f, a, width=100, sort_output=True, include_lineno=False)

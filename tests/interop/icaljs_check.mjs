// Read iCalendar files with Mozilla's ical.js (Thunderbird's parser) and print what it sees, as JSON.
// Usage: node icaljs_check.mjs FILE...   → [{file, events: [{uid, start, end, sequence, dtstamp, ...}]}]
// Every VTIMEZONE of a file is registered before its events are read, as a client without the zone would.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

function utc(time) {
  return time.toJSDate().toISOString().replace(".000Z", "Z");
}

const results = [];
for (const file of process.argv.slice(2)) {
  const calendar = new ICAL.Component(ICAL.parse(readFileSync(file, "utf8")));
  ICAL.TimezoneService.reset();
  for (const vtimezone of calendar.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(new ICAL.Timezone(vtimezone));
  }
  const events = calendar.getAllSubcomponents("vevent").map((vevent) => {
    const event = new ICAL.Event(vevent);
    return {
      uid: event.uid,
      tzid: event.startDate.zone.tzid,
      start: utc(event.startDate),
      end: utc(event.endDate),
      sequence: event.sequence,
      dtstamp: utc(vevent.getFirstPropertyValue("dtstamp")),
      status: vevent.getFirstPropertyValue("status"),
      attendee: vevent.getFirstPropertyValue("attendee"),
      organizer: vevent.getFirstPropertyValue("organizer"),
    };
  });
  results.push({ file, method: calendar.getFirstPropertyValue("method"), events });
}
process.stdout.write(JSON.stringify(results));

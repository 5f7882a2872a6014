package audit

import "time"

// bankHolidays are the bank holidays of England and Wales, bundled so that
// no network is needed. Source: GOV.UK's published lists (substitute days
// included).
var bankHolidays = map[int]bool{}

func init() {
	for _, d := range []string{
		"2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26", "2024-12-25", "2024-12-26",
		"2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25", "2025-12-25", "2025-12-26",
		"2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31", "2026-12-25", "2026-12-28",
		"2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30", "2027-12-27", "2027-12-28",
		"2028-01-03", "2028-04-14", "2028-04-17", "2028-05-01", "2028-05-29", "2028-08-28", "2028-12-25", "2028-12-26",
	} {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			panic(err)
		}
		y, m, day := t.Date()
		bankHolidays[y*10000+int(m)*100+day] = true
	}
}

// BankHoliday reports whether the local date of t is a bank holiday in England and Wales.
func BankHoliday(t time.Time, loc *time.Location) bool {
	y, m, d := t.In(loc).Date()
	return bankHolidays[y*10000+int(m)*100+d]
}

// OutOfHours reports whether t falls out of hours in loc: 18:30–08:00 on
// weekdays, all weekend, and all day on bank holidays.
func OutOfHours(t time.Time, loc *time.Location) bool {
	return outOfHoursLocal(t.In(loc), loc)
}

func outOfHoursLocal(l time.Time, loc *time.Location) bool {
	if l.Weekday() == time.Saturday || l.Weekday() == time.Sunday {
		return true
	}
	y, m, d := l.Date()
	if bankHolidays[y*10000+int(m)*100+d] {
		return true
	}
	mins := l.Hour()*60 + l.Minute()
	return mins < 8*60 || mins >= 18*60+30
}

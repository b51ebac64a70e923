//! ISO 8601 / RFC 3339 timestamps for APIs that speak them instead of Unix
//! seconds (Resend's `created_at`, `scheduled_at`, GitHub, Slack…).
//!
//! [`format_millis`] writes twin time as `2024-08-05T11:52:01.858Z`;
//! [`parse_millis`] reads what clients send: a date, or a date and time
//! with optional seconds, fraction and offset (`Z`, `+02:00`, `+0200`,
//! `+02`); without an offset the time is UTC.
//!
//! ```
//! use wt_sdk::datetime::{format_millis, parse_millis};
//!
//! assert_eq!(format_millis(1_722_858_721_858), "2024-08-05T11:52:01.858Z");
//! assert_eq!(parse_millis("2024-08-05T13:52:01.858+02:00"), Some(1_722_858_721_858));
//! ```

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `secs` (Unix seconds, UTC) moved `months` calendar months later, keeping
/// the time of day and clamping the day to the target month's length
/// (Jan 31 + 1 month = Feb 28 or 29), the way billing periods are anchored.
/// Adding to the original anchor rather than chaining keeps a day-31 anchor
/// on day 31 in the months that have one.
pub fn add_months(secs: u64, months: u32) -> u64 {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let index = year * 12 + i64::from(month - 1) + i64::from(months);
    let (year, month) = (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32);
    let day = day.min(days_in_month(year, month));
    let out = days_from_civil(year, month, day) * 86_400 + rest;
    u64::try_from(out).unwrap_or(0)
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_millis(millis: u64) -> String {
    let millis = i64::try_from(millis).unwrap_or(i64::MAX);
    let (days, rest) = (
        millis.div_euclid(MILLIS_PER_DAY),
        millis.rem_euclid(MILLIS_PER_DAY),
    );
    let (year, month, day) = civil_from_days(days);
    let secs = rest / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rest % 1000
    )
}

/// Whole seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_secs(secs: u64) -> String {
    let full = format_millis(secs.saturating_mul(1000));
    format!("{}Z", &full[..full.len() - 5])
}

/// Milliseconds since the Unix epoch as an RFC 2822 date in UTC,
/// `Tue, 14 Nov 2023 22:13:20 +0000`: the `date_created` of Twilio's 2010
/// API and of mail-era APIs. Sub-second precision is dropped, as RFC 2822
/// has none.
pub fn format_rfc2822(millis: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let millis = i64::try_from(millis).unwrap_or(i64::MAX);
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let secs = millis.rem_euclid(MILLIS_PER_DAY) / 1000;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = DAYS[days.rem_euclid(7) as usize];
    format!(
        "{weekday}, {day:02} {} {year:04} {:02}:{:02}:{:02} +0000",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Reads an ISO 8601 date or date-time into milliseconds since the Unix
/// epoch; `None` when it is not one, names an impossible date or time, or
/// lies before 1970. Fractions beyond milliseconds are truncated.
pub fn parse_millis(text: &str) -> Option<u64> {
    let mut p = Cursor(text.trim().as_bytes());
    let year = p.digits(4)?;
    p.expect(b'-')?;
    let month = u32::try_from(p.digits(2)?).ok()?;
    p.expect(b'-')?;
    let day = u32::try_from(p.digits(2)?).ok()?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * MILLIS_PER_DAY;
    if p.0.is_empty() {
        return u64::try_from(millis).ok();
    }
    match p.next()? {
        b'T' | b't' | b' ' => {}
        _ => return None,
    }
    let hour = p.digits(2)?;
    p.expect(b':')?;
    let minute = p.digits(2)?;
    let mut second = 0;
    if p.peek() == Some(b':') {
        p.next();
        second = p.digits(2)?;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    millis += (hour * 3600 + minute * 60 + second) * 1000;
    if matches!(p.peek(), Some(b'.' | b',')) {
        p.next();
        let mut scale = 100;
        let mut any = false;
        while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
            p.next();
            any = true;
            millis += i64::from(d - b'0') * scale;
            scale /= 10;
        }
        if !any {
            return None;
        }
    }
    match p.next() {
        None => {}
        Some(b'Z' | b'z') => {}
        Some(sign @ (b'+' | b'-')) => {
            let hours = p.digits(2)?;
            let minutes = match p.peek() {
                None => 0,
                Some(b':') => {
                    p.next();
                    p.digits(2)?
                }
                Some(_) => p.digits(2)?,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = (hours * 60 + minutes) * 60_000;
            millis += if sign == b'+' { -offset } else { offset };
        }
        Some(_) => return None,
    }
    if !p.0.is_empty() {
        return None;
    }
    u64::try_from(millis).ok()
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    fn next(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut value = 0;
        for _ in 0..n {
            let d = self.next().filter(u8::is_ascii_digit)?;
            value = value * 10 + i64::from(d - b'0');
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_calendar_months_clamping_the_day() {
        let jan31 = 1_706_659_200 + 3_600; // 2024-01-31T01:00:00Z
        assert_eq!(format_secs(add_months(jan31, 1)), "2024-02-29T01:00:00Z");
        assert_eq!(format_secs(add_months(jan31, 2)), "2024-03-31T01:00:00Z");
        assert_eq!(format_secs(add_months(jan31, 13)), "2025-02-28T01:00:00Z");
        assert_eq!(add_months(jan31, 0), jan31);
    }

    #[test]
    fn formats() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_millis(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(format_secs(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn formats_rfc_2822() {
        assert_eq!(format_rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            format_rfc2822(1_700_000_000_123),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
        assert_eq!(
            format_rfc2822(951_782_400_000),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
        assert_eq!(
            format_rfc2822(1_281_930_301_000),
            "Mon, 16 Aug 2010 03:45:01 +0000"
        );
    }

    #[test]
    fn parses_what_clients_send() {
        let t = 1_700_000_000_123;
        for text in [
            "2023-11-14T22:13:20.123Z",
            "2023-11-14T22:13:20.123456+00:00",
            "2023-11-14 22:13:20.123",
            "2023-11-15T00:13:20.123+02:00",
            "2023-11-15T00:13:20.123+0200",
            "2023-11-14T20:13:20.123-02",
            " 2023-11-14t22:13:20,123z ",
        ] {
            assert_eq!(parse_millis(text), Some(t), "{text}");
        }
        assert_eq!(parse_millis("2023-11-14T22:13Z"), Some(1_699_999_980_000));
        assert_eq!(parse_millis("2023-11-14"), Some(1_699_920_000_000));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for text in [
            "",
            "tomorrow",
            "2023-13-01",
            "2023-02-29",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20Zjunk",
            "2023-11-14T22:13:20+25:00",
            "1969-12-31T23:59:59Z",
            "2023-1-14",
        ] {
            assert_eq!(parse_millis(text), None, "{text}");
        }
        assert_eq!(parse_millis("2024-02-29"), Some(1_709_164_800_000));
    }

    #[test]
    fn round_trips_over_four_centuries() {
        let mut t: u64 = 0;
        while t < 12_000_000_000_000 {
            assert_eq!(parse_millis(&format_millis(t)), Some(t));
            t += 7_777_777_777;
        }
    }
}

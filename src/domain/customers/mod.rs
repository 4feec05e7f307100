//! Returning customers (#16): the records, the search index, the links
//! from visits and bookings, merge and forget, `visit.update`; and what of
//! an event or a record is personal, so that the store can keep it sealed
//! with the customer's own key (see `crate::keyring`).
//!
//! A visit or booking points to a customer through a `CustomerLinked`
//! event (the persisted `Visit` and `Booking` keep their shape); the
//! customer record lists its visits and bookings and the state derives
//! the reverse maps ([`CustomerIndex`]). Forgetting blanks every linked
//! copy in memory and names the keys the store destroys after the commit,
//! so the sealed copies of the name in the log and the archive become
//! unreadable while every count and amount stays.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::book::Booking;
use super::command::{
    CustomerCreate, CustomerForget, CustomerHistory, CustomerMerge, CustomerSearch, CustomerUpdate,
    VisitUpdate,
};
use super::decide::{one, optional_text, text, Decided, Reply, MAX_NAME, MAX_PHONE};
use super::event::Event;
use super::state::{State, Visit, VisitState};
use super::{conflict, invalid, not_found, Actor, DomainError, Id, Now};

mod apply;
mod personal;

pub use apply::{redact_booking, redact_visit};
pub use personal::*;

/// What a forgotten name reads as everywhere (and a sealed one, redacted).
pub const FORGOTTEN: &str = "(forgotten)";
pub const MAX_CUSTOMER_NOTES: usize = 2000;
const MAX_EMAIL: usize = 120;
pub const SEARCH_LIMIT: usize = 20;
const MIN_PHONE_DIGITS: usize = 6;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: Id,
    pub name: String,
    /// Digits only.
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Staff notes and allergies.
    pub notes: Option<String>,
    pub created_at: i64,
    pub last_visit_at: Option<i64>,
    pub forgotten: bool,
    pub visit_ids: Vec<Id>,
    pub booking_ids: Vec<Id>,
    /// Customers merged into this one: their keys go with this one's.
    pub absorbed: Vec<Id>,
}

impl Customer {
    /// The keys sealing this person's data (their own and the merged ones').
    pub fn key_ids(&self) -> Vec<Id> {
        let mut ids = vec![self.id];
        ids.extend(&self.absorbed);
        ids
    }
}

/// One `visit.update`: who and when (the event's actor and time) and which
/// fields changed (never their values: those are personal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VisitEdit {
    pub at: i64,
    pub by: Option<Id>,
    pub changed: Vec<String>,
}

/// Derived from the customer records (never persisted): name words for
/// prefix search, the phones for digit search, and the owners of visits
/// and bookings.
#[derive(Debug, Clone, Default)]
pub struct CustomerIndex {
    /// (folded word, customer) → (the word's place in the name, the last
    /// visit): enough to rank a one-word search without reading the record.
    /// The word is kept inline as its first `WORD_KEY` bytes (zero-padded,
    /// so the order is the words' order): no heap string per entry, and a
    /// range walk never leaves the map's nodes. The value holds the word's
    /// true length too.
    words: BTreeMap<(WordKey, Id), WordFacts>,
    /// Every live phone in one array, scanned from end to end by a digit
    /// search (a map walk per customer costs more than the comparison);
    /// `phone_at` finds an entry to remove it.
    phones: Vec<PhoneEntry>,
    phone_at: std::collections::HashMap<Id, usize>,
    pub visit_owner: BTreeMap<Id, Id>,
    pub booking_owner: BTreeMap<Id, Id>,
}

const WORD_KEY: usize = 16;
type WordKey = [u8; WORD_KEY];

/// A word's place in the name, its length in bytes, the customer's last visit.
type WordFacts = (u8, u8, i64);

fn word_key(word: &str) -> WordKey {
    let mut k = [0u8; WORD_KEY];
    let b = word.as_bytes();
    let n = b.len().min(WORD_KEY);
    k[..n].copy_from_slice(&b[..n]);
    k
}

/// The first key after every key that starts with `prefix` (at most
/// `WORD_KEY` bytes): its last byte moved one up; `None` when there is none.
fn prefix_end(prefix: &[u8]) -> Option<WordKey> {
    let mut bytes = prefix[..prefix.len().min(WORD_KEY)].to_vec();
    while let Some(last) = bytes.pop() {
        if last < u8::MAX {
            bytes.push(last + 1);
            let mut k = [0u8; WORD_KEY];
            k[..bytes.len()].copy_from_slice(&bytes);
            return Some(k);
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
struct PhoneEntry {
    id: Id,
    last: i64,
    len: u8,
    digits: [u8; 24],
}

impl PartialEq for CustomerIndex {
    /// The phones' order depends on history; their content is what counts.
    fn eq(&self, other: &Self) -> bool {
        let sorted = |i: &CustomerIndex| {
            let mut p: Vec<(Id, i64, Vec<u8>)> = i
                .phones
                .iter()
                .map(|e| (e.id, e.last, e.digits[..usize::from(e.len)].to_vec()))
                .collect();
            p.sort();
            p
        };
        self.words == other.words
            && self.visit_owner == other.visit_owner
            && self.booking_owner == other.booking_owner
            && sorted(self) == sorted(other)
    }
}

impl CustomerIndex {
    pub fn insert(&mut self, c: &Customer) {
        if !c.forgotten {
            let last = c.last_visit_at.unwrap_or(0);
            for (i, w) in words(&c.name).into_iter().enumerate() {
                let pos = u8::try_from(i).unwrap_or(u8::MAX);
                let len = u8::try_from(w.len()).unwrap_or(u8::MAX);
                let entry = self
                    .words
                    .entry((word_key(&w), c.id))
                    .or_insert((pos, len, last));
                if pos < entry.0 {
                    *entry = (pos, len, last);
                }
            }
            if let Some(p) = c.phone.as_deref().filter(|p| p.len() <= 24) {
                let mut digits = [0u8; 24];
                digits[..p.len()].copy_from_slice(p.as_bytes());
                self.phone_at.insert(c.id, self.phones.len());
                self.phones.push(PhoneEntry {
                    id: c.id,
                    last,
                    len: p.len() as u8,
                    digits,
                });
            }
        }
        for v in &c.visit_ids {
            self.visit_owner.insert(*v, c.id);
        }
        for b in &c.booking_ids {
            self.booking_owner.insert(*b, c.id);
        }
    }

    pub fn remove(&mut self, c: &Customer) {
        for w in words(&c.name) {
            self.words.remove(&(word_key(&w), c.id));
        }
        if let Some(at) = self.phone_at.remove(&c.id) {
            self.phones.swap_remove(at);
            if let Some(moved) = self.phones.get(at) {
                self.phone_at.insert(moved.id, at);
            }
        }
        for v in &c.visit_ids {
            if self.visit_owner.get(v) == Some(&c.id) {
                self.visit_owner.remove(v);
            }
        }
        for b in &c.booking_ids {
            if self.booking_owner.get(b) == Some(&c.id) {
                self.booking_owner.remove(b);
            }
        }
    }
}

/// The best `SEARCH_LIMIT` of `hits` (an id may appear more than once:
/// its best entry counts), best first.
fn best<K: Ord + Copy>(mut hits: Vec<(K, Id)>) -> Vec<Id> {
    // Select a margin for duplicates, then sort only that.
    let margin = SEARCH_LIMIT * 4;
    if hits.len() > margin {
        hits.select_nth_unstable(margin - 1);
        hits.truncate(margin);
    }
    hits.sort_unstable();
    let mut out: Vec<Id> = Vec::with_capacity(SEARCH_LIMIT);
    for (_, id) in hits {
        if !out.contains(&id) {
            out.push(id);
            if out.len() == SEARCH_LIMIT {
                break;
            }
        }
    }
    out
}

/// Lower case without accents: "José" and "jose" match. Covers the Latin
/// letters of Western and Central European names; others pass unchanged.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        let plain = match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
            'ç' | 'ć' | 'č' => "c",
            'ď' | 'đ' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
            'ğ' => "g",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
            'ł' | 'ľ' | 'ĺ' => "l",
            'ñ' | 'ń' | 'ň' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'ř' | 'ŕ' => "r",
            'ś' | 'š' | 'ş' | 'ș' => "s",
            'ß' => "ss",
            'ť' | 'ţ' | 'ț' => "t",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            'æ' => "ae",
            'œ' => "oe",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(plain);
    }
    out
}

/// The folded words of a name (split at anything not a letter or digit).
pub fn words(name: &str) -> Vec<String> {
    fold(name)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A phone as digits; `invalid` naming `field` with fewer than 6 digits.
pub fn phone_digits(field: &str, phone: &str) -> Result<String, DomainError> {
    if phone.chars().count() > MAX_PHONE {
        return Err(invalid(format!(
            "`{field}` is longer than {MAX_PHONE} characters"
        )));
    }
    if phone
        .chars()
        .any(|c| !(c.is_ascii_digit() || " +-./()".contains(c)))
    {
        return Err(invalid(format!(
            "`{field}` may hold only digits, spaces and + - . / ( )"
        )));
    }
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < MIN_PHONE_DIGITS {
        return Err(invalid(format!(
            "`{field}` must have at least {MIN_PHONE_DIGITS} digits"
        )));
    }
    Ok(digits)
}

fn optional_phone(field: &str, phone: &Option<String>) -> Result<Option<String>, DomainError> {
    match phone.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(p) => phone_digits(field, p).map(Some),
    }
}

fn optional_email(email: &Option<String>) -> Result<Option<String>, DomainError> {
    let Some(e) = optional_text("email", email, MAX_EMAIL)? else {
        return Ok(None);
    };
    let mut parts = e.splitn(2, '@');
    let (user, host) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if user.is_empty() || host.is_empty() || e.contains(char::is_whitespace) {
        return Err(invalid("`email` must look like name@example.com"));
    }
    Ok(Some(e))
}

fn customer_notes(notes: &Option<String>) -> Result<Option<String>, DomainError> {
    match notes.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > MAX_CUSTOMER_NOTES => Err(invalid(format!(
            "`notes` is longer than {MAX_CUSTOMER_NOTES} characters"
        ))),
        // Notes may span lines; other control characters are refused.
        Some(n) if n.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(invalid("`notes` contains control characters"))
        }
        Some(n) => Ok(Some(n.to_string())),
    }
}

/// A live (not forgotten) customer, for the argument `field`.
pub fn live<'a>(state: &'a State, id: Id, field: &str) -> Result<&'a Customer, DomainError> {
    let c = state
        .customers
        .get(&id)
        .ok_or_else(|| not_found(format!("`{field}`: there is no customer {id}")))?;
    if c.forgotten {
        return Err(conflict(format!("`{field}`: customer {id} was forgotten")));
    }
    Ok(c)
}

/// Live customers with this phone (the desk is offered them, not a twin).
pub fn with_phone(state: &State, digits: &str) -> Vec<Id> {
    state
        .customers
        .values()
        .filter(|c| !c.forgotten && c.phone.as_deref() == Some(digits))
        .map(|c| c.id)
        .collect()
}

pub fn create(state: &State, a: &CustomerCreate, now: Now) -> Result<Decided, DomainError> {
    let name = text("name", &a.name, MAX_NAME)?;
    let phone = optional_phone("phone", &a.phone)?;
    let email = optional_email(&a.email)?;
    let notes = customer_notes(&a.notes)?;
    if let (Some(p), false) = (&phone, a.duplicate) {
        if let Some(other) = with_phone(state, p).first() {
            return Err(conflict(format!(
                "customer {other} already has this phone: use that record, or send `duplicate: true` to make another"
            )));
        }
    }
    let customer = Customer {
        id: state.counters.next_id.max(1),
        name,
        phone,
        email,
        notes,
        created_at: now.ms,
        last_visit_at: None,
        forgotten: false,
        visit_ids: Vec::new(),
        booking_ids: Vec::new(),
        absorbed: Vec::new(),
    };
    let reply = Reply::Customer(customer.id);
    one(Event::CustomerCreated { customer }, reply)
}

pub fn update(state: &State, a: &CustomerUpdate) -> Result<Decided, DomainError> {
    let c = live(state, a.customer_id, "customer_id")?;
    let name = match &a.name {
        Some(n) => text("name", n, MAX_NAME)?,
        None => c.name.clone(),
    };
    let phone = match &a.phone {
        Some(p) => optional_phone("phone", p)?,
        None => c.phone.clone(),
    };
    let email = match &a.email {
        Some(e) => optional_email(e)?,
        None => c.email.clone(),
    };
    let notes = match &a.notes {
        Some(n) => customer_notes(n)?,
        None => c.notes.clone(),
    };
    one(
        Event::CustomerUpdated {
            customer_id: c.id,
            name,
            phone,
            email,
            notes,
        },
        Reply::Customer(c.id),
    )
}

pub fn merge(state: &State, a: &CustomerMerge) -> Result<Decided, DomainError> {
    if a.customer_id == a.into_id {
        return Err(invalid(
            "`into_id`: a customer cannot be merged into itself",
        ));
    }
    let from = live(state, a.customer_id, "customer_id")?;
    let into = live(state, a.into_id, "into_id")?;
    one(
        Event::CustomersMerged {
            from_id: from.id,
            into_id: into.id,
        },
        Reply::Customer(into.id),
    )
}

pub fn forget(state: &State, a: &CustomerForget) -> Result<Decided, DomainError> {
    let reason = text("reason", &a.reason, super::decide::MAX_REASON)?;
    let c = state
        .customers
        .get(&a.customer_id)
        .ok_or_else(|| not_found(format!("there is no customer {}", a.customer_id)))?;
    if c.forgotten {
        return Err(conflict(format!("customer {} was already forgotten", c.id)));
    }
    one(
        Event::CustomerForgotten {
            customer_id: c.id,
            reason,
            visit_ids: c.visit_ids.clone(),
            booking_ids: c.booking_ids.clone(),
            key_ids: c.key_ids(),
        },
        Reply::Json(json!({ "customer_id": c.id, "forgotten": true })),
    )
}

/// `customer.search`: at most 20, best first. Digits (3 or more, nothing
/// else but spaces and + - . ( )) search phones anywhere; otherwise every
/// word of `q` must begin a word of the name.
pub fn search(state: &State, q: &str) -> Vec<Id> {
    let q = q.trim();
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone_like = digits.len() >= 3
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-.()/".contains(c));
    if phone_like {
        let needle = digits.as_bytes();
        let hits: Vec<((bool, std::cmp::Reverse<i64>), Id)> = state
            .customer_index
            .phones
            .iter()
            .filter_map(|e| {
                let p = &e.digits[..usize::from(e.len)];
                let at = p.windows(needle.len()).position(|w| w == needle)?;
                // Ending with the digits typed (the last four) ranks first.
                let tail = at + needle.len() == p.len();
                Some(((!tail, std::cmp::Reverse(e.last)), e.id))
            })
            .collect();
        return best(hits);
    }
    let terms = words(q);
    let Some(key) = terms.iter().max_by_key(|t| t.len()) else {
        return Vec::new();
    };
    // Candidates from the longest term's range of the index, each entry
    // ranked: whole words typed, then a first name that starts so, then the
    // most recent visit, then the oldest record.
    // A term longer than the index keeps is looked up by its first bytes
    // and checked against the names (the several-words way).
    let long = key.len() > WORD_KEY;
    let low = (word_key(key), 0);
    let range = match prefix_end(key.as_bytes()) {
        Some(end) => state.customer_index.words.range(low..(end, 0)),
        None => state.customer_index.words.range(low..),
    };
    let rank = |exact: u8, first: bool| {
        u8::MAX
            .saturating_sub(exact.saturating_mul(2))
            .saturating_sub(u8::from(first))
    };
    if terms.len() == 1 && !long {
        // In the range, a word is the whole term exactly when it is as long.
        let hits: Vec<((u8, std::cmp::Reverse<i64>), Id)> = range
            .map(|((_, id), (pos, len, last))| {
                let r = rank(u8::from(usize::from(*len) == key.len()), *pos == 0);
                ((r, std::cmp::Reverse(*last)), *id)
            })
            .collect();
        return best(hits);
    }
    // Several words: every one must begin a word of the name.
    let mut ids: Vec<(Id, i64)> = range.map(|((_, id), (_, _, last))| (*id, *last)).collect();
    ids.sort_unstable();
    ids.dedup();
    let hits: Vec<((u8, std::cmp::Reverse<i64>), Id)> = ids
        .into_iter()
        .filter_map(|(id, last)| {
            let c = state.customers.get(&id)?;
            let name_words = words(&c.name);
            let mut exact = 0u8;
            for t in &terms {
                if name_words.iter().any(|w| w == t) {
                    exact = exact.saturating_add(1);
                } else if !name_words.iter().any(|w| w.starts_with(t.as_str())) {
                    return None;
                }
            }
            let first = name_words
                .first()
                .is_some_and(|w| w.starts_with(terms[0].as_str()));
            Some(((rank(exact, first), std::cmp::Reverse(last)), id))
        })
        .collect();
    best(hits)
}

pub fn search_reply(state: &State, a: &CustomerSearch) -> Result<Decided, DomainError> {
    if a.q.chars().count() > 100 {
        return Err(invalid("`q` is longer than 100 characters"));
    }
    let customers: Vec<Value> = search(state, &a.q)
        .into_iter()
        .filter_map(|id| state.customers.get(&id))
        .map(view)
        .collect();
    Ok(Decided {
        events: Vec::new(),
        reply: Reply::Json(json!({ "customers": customers })),
    })
}

/// The office's view of a customer.
pub fn view(c: &Customer) -> Value {
    json!({
        "id": c.id,
        "name": c.name,
        "phone": c.phone,
        "email": c.email,
        "notes": c.notes,
        "created_at": c.created_at,
        "last_visit_at": c.last_visit_at,
        "forgotten": c.forgotten,
        "visits": c.visit_ids.len(),
        "bookings": c.booking_ids.len(),
    })
}

/// What a therapist sees of the customer of their own visit or booking.
pub fn therapist_view(c: &Customer) -> Value {
    json!({ "id": c.id, "name": c.name, "notes": c.notes })
}

/// One visit of a history: services, therapist, amounts.
fn history_visit(state: &State, v: &Visit) -> Value {
    let services: Vec<Value> = v
        .service_ids
        .iter()
        .map(|id| json!({"id": id, "name": state.services.get(id).map(|s| s.name.clone())}))
        .collect();
    let (paid, tip, discount) = v.checkout.as_ref().map_or((0, 0, 0), |c| {
        (
            c.paid_cents().saturating_sub(c.change_cents),
            c.tip_cents,
            c.discount_cents,
        )
    });
    let refunded: i64 = v.refunds.iter().map(|r| r.amount_cents).sum();
    json!({
        "id": v.id,
        "number": v.number,
        "day": v.day,
        "state": v.state.as_str(),
        "created_at": v.created_at,
        "services": services,
        "therapist_id": v.therapist,
        "therapist": v.therapist.and_then(|t| state.staff.get(&t)).map(|t| t.name.clone()),
        "services_cents": v.services_cents,
        "discount_cents": discount,
        "tip_cents": tip,
        "paid_cents": paid,
        "refunded_cents": refunded,
        "notes": v.notes,
    })
}

fn history_booking(state: &State, b: &Booking) -> Value {
    json!({
        "id": b.id,
        "number": b.number,
        "date": b.date,
        "time": b.time,
        "start": b.start_ms,
        "state": b.state.as_str(),
        "service_ids": b.service_ids,
        "therapist_id": b.therapist_id,
        "therapist": state.staff.get(&b.therapist_id).map(|t| t.name.clone()),
        "visit_id": b.visit_id,
    })
}

/// `customer.history`: the record, its visits (in memory or archived, the
/// writer fills the archived ones in) and bookings, newest first.
pub fn history(state: &State, a: &CustomerHistory) -> Result<Decided, DomainError> {
    let c = state
        .customers
        .get(&a.customer_id)
        .ok_or_else(|| not_found(format!("there is no customer {}", a.customer_id)))?;
    let mut visits: Vec<&Visit> = c
        .visit_ids
        .iter()
        .filter_map(|id| {
            state
                .visits
                .get(id)
                .or_else(|| a.archived_visits.iter().find(|v| v.id == *id))
        })
        .collect();
    visits.sort_by_key(|v| std::cmp::Reverse(v.created_at));
    let mut bookings: Vec<&Booking> = c
        .booking_ids
        .iter()
        .filter_map(|id| {
            state
                .bookings
                .get(id)
                .or_else(|| a.archived_bookings.iter().find(|b| b.id == *id))
        })
        .collect();
    bookings.sort_by_key(|b| std::cmp::Reverse(b.start_ms));
    Ok(Decided {
        events: Vec::new(),
        reply: Reply::Json(json!({
            "customer": view(c),
            "visits": visits.iter().map(|v| history_visit(state, v)).collect::<Vec<_>>(),
            "bookings": bookings.iter().map(|b| history_booking(state, b)).collect::<Vec<_>>(),
        })),
    })
}

/// `visit.update`: before checkout; the requested therapist only while
/// waiting. Services re-price the visit and move its planned end.
pub fn visit_update(
    state: &State,
    actor: &Actor,
    a: &VisitUpdate,
    now: Now,
) -> Result<Decided, DomainError> {
    let v = super::decide::visit_ref(state, a.visit_id)?;
    if v.state.is_terminal() {
        return Err(conflict(format!(
            "visit {} is {}: only a visit before checkout can be edited",
            v.number,
            v.state.as_str()
        )));
    }
    let forgotten = state.customer_of_visit(v.id).is_some_and(|c| c.forgotten);
    if forgotten && (a.customer_name.is_some() || a.phone.is_some() || a.notes.is_some()) {
        return Err(conflict(format!(
            "visit {}'s customer was forgotten: their name, phone and notes stay blank",
            v.number
        )));
    }
    let mut changed: Vec<String> = Vec::new();
    let mut after = v.clone();
    if let Some(n) = &a.customer_name {
        after.customer_name = text("customer_name", n, MAX_NAME)?;
    }
    if let Some(p) = &a.phone {
        after.phone = optional_text("phone", p, MAX_PHONE)?;
        if let Some(p) = &after.phone {
            phone_digits("phone", p)?;
        }
    }
    if let Some(n) = &a.notes {
        after.notes = optional_text("notes", n, super::decide::MAX_NOTES)?;
    }
    if let Some(ids) = &a.service_ids {
        if v.state == VisitState::AwaitingPayment {
            return Err(conflict(format!(
                "visit {} is finished: its services can no longer change",
                v.number
            )));
        }
        let probe = super::decide::build_visit(
            state,
            super::decide::NewVisit {
                customer_name: after.customer_name.clone(),
                phone: None,
                notes: None,
                service_ids: ids.clone(),
                requested_therapist: None,
                token_hash: "-".into(),
                allow_removed_services: false,
            },
            now,
        )?;
        after.service_ids = probe.service_ids;
        after.services_cents = probe.services_cents;
        after.service_minutes = probe.service_minutes;
        after.cleanup_min = probe.cleanup_min;
        if let Some(started) = v.started_at {
            let minutes = i64::from(after.service_minutes) + i64::from(v.extended_min);
            after.planned_end = Some(started + minutes * 60_000);
        }
    }
    if let Some(t) = &a.requested_therapist_id {
        if v.state != VisitState::Waiting {
            return Err(conflict(format!(
                "visit {} is {}: the requested therapist can change only while it waits",
                v.number,
                v.state.as_str()
            )));
        }
        if let Some(t) = t {
            let t = super::decide::therapist_ref(state, *t, "requested_therapist_id")?;
            let needed = super::rotation::skills_needed(state, &after);
            if !super::rotation::has_skills(t, &needed) {
                return Err(invalid(format!(
                    "`requested_therapist_id`: {} does not have the skills these services need",
                    t.name
                )));
            }
        }
        after.requested_therapist = *t;
    }
    for (field, differs) in [
        ("customer_name", after.customer_name != v.customer_name),
        ("phone", after.phone != v.phone),
        ("notes", after.notes != v.notes),
        ("service_ids", after.service_ids != v.service_ids),
        (
            "requested_therapist_id",
            after.requested_therapist != v.requested_therapist,
        ),
    ] {
        if differs {
            changed.push(field.to_string());
        }
    }
    let mut events = Vec::new();
    if let Some(cid) = a.customer_id {
        let c = live(state, cid, "customer_id")?;
        if state.customer_index.visit_owner.get(&v.id) != Some(&c.id) {
            events.push(Event::CustomerLinked {
                customer_id: c.id,
                visit_id: Some(v.id),
                booking_id: None,
            });
            changed.push("customer_id".into());
        }
    }
    if changed.is_empty() {
        return Err(invalid("visit.update: nothing to change"));
    }
    let _ = actor;
    events.insert(
        0,
        Event::VisitUpdated {
            visit_id: v.id,
            customer_name: after.customer_name,
            phone: after.phone,
            notes: after.notes,
            service_ids: after.service_ids,
            requested_therapist: after.requested_therapist,
            services_cents: after.services_cents,
            service_minutes: after.service_minutes,
            cleanup_min: after.cleanup_min,
            planned_end: after.planned_end,
            changed,
        },
    );
    Ok(Decided {
        events,
        reply: Reply::Visit(v.id),
    })
}

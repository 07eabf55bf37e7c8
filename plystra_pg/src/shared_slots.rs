//! A table of fixed-size slots in shared memory that the server's backends share entries through: the machinery
//! under `actor_shared` (actors) and `group_shared` (groups). What an entry is, what it is filed under and when it
//! may be used is each tier's own rule; this module only files and finds bytes.
//!
//! Placement: a hash of the database and the entry's id, keyed by a random key drawn when the region is made
//! (ids may be chosen by whoever creates a row, and must not be able to aim at another entry's bucket), chooses
//! two buckets of four slots; an entry is filed in the slot already holding its id, else an empty slot of the
//! emptier bucket, else it replaces the eight slots' entries in turn. Two choices, because with one a full tier
//! kept too few: 100,000 actors over 131,072 slots (32,768 buckets of four) left about a tenth of them without a
//! slot (buckets that drew five or more), measured as 11% of decisions reading their actor again after any
//! warm-up; with the emptier of two buckets the same load leaves almost none out
//! (`a_full_table_keeps_almost_every_entry`).
//!
//! Concurrency: each slot is a sequence lock. A writer makes the slot's counter odd with a compare-and-swap
//! (a writer that finds it odd, or loses the swap, skips: a cache is never worth waiting for), copies the entry
//! in and makes the counter even again. A reader copies the slot out and uses the copy only when the counter was
//! even and unchanged across the copy; a torn copy is discarded. The entry's bytes are stored and loaded as
//! atomic words (relaxed), so a reader racing a writer reads values, never plain memory being written. Between
//! the swap and the release the writer calls nothing that can raise an error, so a slot is never left odd by a
//! backend that goes on; a backend killed there makes the postmaster reinitialise shared memory.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::ptr::null;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use pgrx::{pg_sys, GucContext, GucFlags, GucRegistry, GucSetting};
use sha2::{Digest, Sha256};

/// Slots of a bucket: an id may be filed in either of two buckets of four.
const WAYS: usize = 4;

/// One slot: its counter, its tag and `WORDS` words of data (the entry's length, u16 little-endian, then the
/// entry).
#[repr(C, align(64))]
pub struct Slot<const WORDS: usize> {
    seq: AtomicU64,
    /// The hash of the entry's database and id (0: empty), written with the entry: a hint that lets a reader skip
    /// the other slots of its bucket without copying them.
    tag: AtomicU64,
    data: [AtomicU64; WORDS],
}

impl<const WORDS: usize> Slot<WORDS> {
    /// The bytes of one slot, its counter and tag included.
    pub const BYTES: usize = size_of::<Self>();
    /// The longest entry a slot holds.
    pub const MAX_ENTRY: usize = WORDS * 8 - 2;

    #[cfg(test)]
    fn empty() -> Self {
        Slot { seq: AtomicU64::new(0), tag: AtomicU64::new(0), data: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

/// The head of a region: the key of the bucket hash, drawn when the region is made. The slots follow, aligned to
/// a slot.
#[repr(C)]
struct Head {
    hash_key: [u8; 16],
}

/// A region's slots and hash key, as this process attached them (`Table::EMPTY` until then, and where there is no
/// region). Copied by value: it names memory that lives as long as the server's shared memory.
#[derive(Clone, Copy)]
pub struct Table<const WORDS: usize> {
    slots: *const Slot<WORDS>,
    count: usize,
    hash_key: [u8; 16],
}

// SAFETY: a table names slots whose every field is an atomic, in memory that outlives every thread.
unsafe impl<const WORDS: usize> Send for Table<WORDS> {}
// SAFETY: as above.
unsafe impl<const WORDS: usize> Sync for Table<WORDS> {}

impl<const WORDS: usize> Table<WORDS> {
    pub const EMPTY: Self = Table { slots: null(), count: 0, hash_key: [0; 16] };

    /// The region's bytes for `count` slots: the head and the slots, with room to align the slots (the head and
    /// the padding fit in one slot's bytes).
    pub fn region_bytes(count: usize) -> usize {
        (count + 1) * Slot::<WORDS>::BYTES
    }

    /// Attaches to the region `name` of `count` slots, making it (empty, with a new hash key) when this is the
    /// first process to. Called from an `attach_shmem` only, with a size its `request_shmem` asked for.
    pub fn attach(name: &CStr, count: usize) -> Self {
        let (base, found) = crate::shmem::region(name, Self::region_bytes(count));
        // SAFETY: the region holds region_bytes(count) bytes: the head at its start, then (aligned to a slot) the
        // slots.
        unsafe {
            let head = base.cast::<Head>();
            let after_head = base.add(size_of::<Head>());
            let slots = after_head.add(after_head.align_offset(align_of::<Slot<WORDS>>()));
            if !found {
                // Every counter even and every length and tag zero: empty slots.
                std::ptr::write_bytes(base, 0, Self::region_bytes(count));
                if !pg_sys::pg_strong_random((*head).hash_key.as_mut_ptr().cast(), 16) {
                    pgrx::error!("plystra: could not draw the hash key of {}", name.to_string_lossy());
                }
            }
            Table { slots: slots.cast::<Slot<WORDS>>(), count, hash_key: (*head).hash_key }
        }
    }

    /// How many slots (0: no table).
    pub fn count(&self) -> usize {
        self.count
    }

    fn slots(&self) -> &'static [Slot<WORDS>] {
        if self.slots.is_null() {
            return &[];
        }
        // SAFETY: an attached table names `count` slots of a region that outlives every backend.
        unsafe { std::slice::from_raw_parts(self.slots, self.count) }
    }

    /// Where an id of `database` is filed: its two buckets and its tag. Hash it once per lookup, for the finding
    /// and, when that misses, the filing.
    pub fn place(&self, database: u64, id: &str) -> Option<Place<WORDS>> {
        let slots = self.slots();
        let buckets = slots.len() / WAYS;
        if buckets == 0 {
            return None;
        }
        // Keyed, and the same in every process (the key is the region's): SHA-256 over the key, the database, the
        // id.
        let digest =
            Sha256::new().chain_update(self.hash_key).chain_update(database.to_le_bytes()).chain_update(id).finalize();
        let hash = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        let other = u64::from_le_bytes(digest[8..16].try_into().expect("8 bytes"));
        let first = (hash % buckets as u64) as usize;
        // Two distinct buckets whenever there are two.
        let second = (first + 1 + (other % (buckets as u64 - 1).max(1)) as usize) % buckets;
        let bucket = |b: usize| &slots[b * WAYS..(b + 1) * WAYS];
        Some(Place { buckets: [bucket(first), bucket(second)], tag: hash.max(1) })
    }

    /// A table over slots of this process's own (tests).
    #[cfg(test)]
    pub fn leaked(count: usize, hash_key: [u8; 16]) -> Self {
        let slots: Vec<Slot<WORDS>> = (0..count).map(|_| Slot::empty()).collect();
        let slots = Box::leak(slots.into_boxed_slice());
        Table { slots: slots.as_ptr(), count, hash_key }
    }
}

/// One shared tier: its setting (how many slots, at server start) and the table this process attached. Each tier
/// is a `static` of its module; `_PG_init` defines its setting and the shared-memory hooks (`shmem`) request and
/// attach its region.
pub struct Tier<const WORDS: usize> {
    /// The region's name in shared memory.
    region: &'static CStr,
    setting_name: &'static CStr,
    short_desc: &'static CStr,
    long_desc: &'static CStr,
    max: i32,
    setting: GucSetting<i32>,
    table: UnsafeCell<Table<WORDS>>,
}

// SAFETY: `table` is written only while the process attaches to shared memory (the postmaster, or a process
// starting), before it serves anything, and only read afterwards; a backend runs one thread.
unsafe impl<const WORDS: usize> Sync for Tier<WORDS> {}

impl<const WORDS: usize> Tier<WORDS> {
    pub const fn new(
        region: &'static CStr,
        setting_name: &'static CStr,
        short_desc: &'static CStr,
        long_desc: &'static CStr,
        default: i32,
        max: i32,
    ) -> Self {
        Tier {
            region,
            setting_name,
            short_desc,
            long_desc,
            max,
            setting: GucSetting::<i32>::new(default),
            table: UnsafeCell::new(Table::EMPTY),
        }
    }

    /// Called from `_PG_init`. The tier exists only when the library is preloaded: a postmaster-level setting can
    /// only be defined while the postmaster loads the library.
    pub fn define(&'static self) {
        // SAFETY: a flag the postmaster sets while it loads shared_preload_libraries.
        if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
            return;
        }
        GucRegistry::define_int_guc(
            self.setting_name,
            self.short_desc,
            self.long_desc,
            &self.setting,
            0,
            self.max,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }

    fn slots_wanted(&self) -> usize {
        self.setting.get().max(0) as usize
    }

    /// The tier's share of the library's shared memory (`shmem`'s request hook).
    pub fn request_shmem(&self) {
        if self.slots_wanted() > 0 {
            // SAFETY: called from the shared-memory request hook.
            unsafe { pg_sys::RequestAddinShmemSpace(Table::<WORDS>::region_bytes(self.slots_wanted())) };
        }
    }

    /// Attaches to the slots, making them when this is the first process to (`shmem`'s startup hook).
    pub fn attach_shmem(&self) {
        let count = self.slots_wanted();
        if count > 0 {
            // SAFETY: written here only, in the process attaching, before it serves anything (see `Sync`).
            unsafe { *self.table.get() = Table::attach(self.region, count) };
        }
    }

    /// The table this process attached (`Table::EMPTY` without one).
    pub fn table(&self) -> Table<WORDS> {
        // SAFETY: read by value; written only before the process serves anything (see `Sync`).
        unsafe { *self.table.get() }
    }
}

/// The database this backend serves, as every entry names it: its OID and the transaction that wrote its row in
/// `pg_database`. Two databases of one server may hold rows with the same ids, incarnations and versions for
/// different changes (`CREATE DATABASE ... TEMPLATE` copies them all), so an entry of one is never used in
/// another; and a database dropped and created again may get the same OID (`CREATE DATABASE ... OID = n` is open
/// to any role with CREATEDB), with a copy of the same template handing out the same versions again, so the OID
/// alone does not name one database's life: each creation writes its row in its own transaction. (A rename or an
/// owner change writes the row again: this backend's entries then only stop being found by newer backends.)
pub fn this_database() -> u64 {
    thread_local! {
        static DATABASE: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
    DATABASE.with(|known| {
        if let Some(database) = known.get() {
            return database;
        }
        // SAFETY: called during a decision, inside a transaction, where the catalog caches may be read; the tuple
        // is released before anything else runs.
        let created_by = unsafe {
            let tuple = pg_sys::SearchSysCache1(
                pg_sys::SysCacheIdentifier::DATABASEOID as i32,
                pg_sys::Datum::from(pg_sys::MyDatabaseId),
            );
            if tuple.is_null() {
                pgrx::error!("plystra: this backend's database is not in pg_database");
            }
            let xmin = pg_sys::HeapTupleHeaderGetRawXmin((*tuple).t_data).into_inner();
            pg_sys::ReleaseSysCache(tuple);
            xmin
        };
        // SAFETY: set once at backend start.
        let oid = unsafe { pg_sys::MyDatabaseId }.to_u32();
        let database = (u64::from(oid) << 32) | u64::from(created_by);
        known.set(Some(database));
        database
    })
}

/// An id's two buckets and its tag in one table (see [`Table::place`]).
pub struct Place<const WORDS: usize> {
    buckets: [&'static [Slot<WORDS>]; 2],
    tag: u64,
}

thread_local! {
    /// Which slot of two full buckets this backend replaces next (in turn, so no slot is always the one replaced).
    static VICTIM: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl<const WORDS: usize> Place<WORDS> {
    fn slots(&self) -> impl Iterator<Item = &'static Slot<WORDS>> {
        let [a, b] = self.buckets;
        a.iter().chain(b.iter())
    }

    /// The first entry of this id's slots that `decode` accepts (it must check that the entry was filed under
    /// exactly the key it wants: the tag is only a hash).
    pub fn find<T>(&self, decode: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
        let tag = self.tag;
        self.slots().filter(|slot| slot.tag.load(Ordering::Relaxed) == tag).find_map(|slot| read(slot, &decode))
    }

    /// Files `entry`: in the slot holding this id already, else an empty slot of the bucket with more of them,
    /// else one of the eight in turn. Skipped (false) when the entry does not fit or another backend is writing
    /// that slot.
    pub fn file(&self, entry: &[u8]) -> bool {
        if entry.is_empty() || entry.len() > Slot::<WORDS>::MAX_ENTRY {
            return false;
        }
        let tag = self.tag;
        let empty =
            |bucket: &'static [Slot<WORDS>]| bucket.iter().filter(|s| s.tag.load(Ordering::Relaxed) == 0).count();
        let [a, b] = self.buckets;
        let emptier = if empty(b) > empty(a) { b } else { a };
        let slot = self
            .slots()
            .find(|slot| slot.tag.load(Ordering::Relaxed) == tag)
            .or_else(|| emptier.iter().find(|slot| slot.tag.load(Ordering::Relaxed) == 0))
            .unwrap_or_else(|| {
                let victim = VICTIM.with(|v| {
                    v.set(v.get().wrapping_add(1));
                    v.get()
                });
                &self.buckets[victim % 2][victim / 2 % WAYS]
            });
        let before = slot.seq.load(Ordering::Relaxed);
        if before & 1 == 1
            || slot.seq.compare_exchange(before, before + 1, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        // This backend holds the slot (its counter is odd); the entry fits (checked above). Word by word: the
        // length and the entry's bytes, the last word padded with zeros.
        let len = (entry.len() as u16).to_le_bytes();
        let mut bytes = len.iter().chain(entry.iter()).copied();
        for word in slot.data.iter().take((2 + entry.len()).div_ceil(8)) {
            let mut value = [0u8; 8];
            for byte in value.iter_mut() {
                *byte = bytes.next().unwrap_or(0);
            }
            word.store(u64::from_ne_bytes(value), Ordering::Relaxed);
        }
        slot.tag.store(tag, Ordering::Relaxed);
        slot.seq.store(before + 2, Ordering::Release);
        true
    }
}

fn read<const WORDS: usize, T>(slot: &Slot<WORDS>, decode: &impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    let mut copy = [[0u8; 8]; WORDS];
    let before = slot.seq.load(Ordering::Acquire);
    if before & 1 == 1 {
        return None;
    }
    // The first word (with the length), then only the words of the entry (an entry is usually a fraction of its
    // slot). A copy torn by a concurrent writer is discarded below; the length is bounded by the slot before it
    // is used, and decoding checks every length against the copy.
    copy[0] = slot.data[0].load(Ordering::Relaxed).to_ne_bytes();
    let len = u16::from_le_bytes([copy[0][0], copy[0][1]]) as usize;
    if len == 0 || len > Slot::<WORDS>::MAX_ENTRY {
        return None;
    }
    let words = (2 + len).div_ceil(8);
    for (to, word) in copy.iter_mut().zip(slot.data.iter()).take(words).skip(1) {
        *to = word.load(Ordering::Relaxed).to_ne_bytes();
    }
    fence(Ordering::Acquire);
    if slot.seq.load(Ordering::Relaxed) != before {
        return None;
    }
    decode(&copy.as_flattened()[2..2 + len])
}

/// Writes an entry: strings as their length (u16) and bytes.
pub struct Encoder(pub Vec<u8>);

impl Encoder {
    pub fn with_capacity(bytes: usize) -> Self {
        Encoder(Vec::with_capacity(bytes))
    }

    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A string; `None` when it is longer than any slot holds.
    pub fn str(&mut self, s: &str) -> Option<()> {
        let len = u16::try_from(s.len()).ok()?;
        self.u16(len);
        self.0.extend_from_slice(s.as_bytes());
        Some(())
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> Option<()> {
        match s {
            Some(s) => {
                self.0.push(1);
                self.str(s)
            }
            None => {
                self.0.push(0);
                Some(())
            }
        }
    }
}

/// Reads an entry written by [`Encoder`]; every read is bounded by the bytes (a short or torn entry is `None`).
pub struct Decoder<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes, at: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let taken = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(taken)
    }
    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    pub fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub fn str(&mut self) -> Option<&'a str> {
        let len = self.u16()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }
    pub fn string(&mut self) -> Option<String> {
        self.str().map(str::to_string)
    }
    pub fn opt_string(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            1 => self.string().map(Some),
            _ => Some(None),
        }
    }
    /// Whether every byte was read: an entry with bytes left over is not the one decoded.
    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Small = Table<14>;

    /// An entry naming its id, padded to `len` bytes.
    fn entry(id: &str, len: usize) -> Vec<u8> {
        let mut e = Encoder::with_capacity(len);
        e.str(id).expect("short");
        e.0.resize(len.max(e.0.len()), b'.');
        e.0
    }

    fn id_of(bytes: &[u8]) -> Option<String> {
        Decoder::new(bytes).string()
    }

    /// The load the full-size benchmark puts on the actors' table (100,000 actors, 131,072 slots: 0.76), scaled
    /// down: the entries filed one after another are nearly all found again (3,093 of 3,113 when written). With a
    /// single bucket of four an id, 2,794 were (buckets that drew five or more keep replacing them).
    #[test]
    fn a_full_table_keeps_almost_every_entry() {
        let table = Small::leaked(4096, [7; 16]);
        let ids: Vec<String> = (0..3113).map(|i| format!("um_{i}")).collect();
        for id in &ids {
            assert!(table.place(5, id).expect("a place").file(&entry(id, 60)), "nobody else writes these slots");
        }
        let found_again = |ids: &[String]| {
            ids.iter()
                .filter(|id| table.place(5, id).expect("a place").find(|b| (id_of(b)? == **id).then_some(())).is_some())
                .count()
        };
        let found = found_again(&ids);
        assert!(found * 100 >= ids.len() * 99, "only {found} of {} entries were kept", ids.len());
        // Filing an entry again uses its own slot: nothing else is displaced.
        for id in &ids[..100] {
            table.place(5, id).expect("a place").file(&entry(id, 60));
        }
        assert_eq!(found_again(&ids), found);
        // Another database's id of the same name is placed elsewhere, or at least tagged apart.
        let mine = table.place(5, "um_1").expect("a place");
        let theirs = table.place(6, "um_1").expect("a place");
        assert_ne!(mine.tag, theirs.tag);
    }

    /// A reader racing a writer of the same slot takes one whole entry or none: two entries of one id and one
    /// length, differing only in their bytes, are filed in turn while two threads read; every read must be one of
    /// them exactly (a copy mixing the two decodes as well, so only the sequence check keeps it out).
    #[test]
    fn a_reader_racing_a_writer_never_takes_a_torn_entry() {
        use std::sync::atomic::AtomicBool;
        let table = Table::<126>::leaked(WAYS, [3; 16]);
        let versions: Vec<Vec<u8>> = [b'a', b'b'].iter().map(|c| [b"um_1".as_slice(), &[*c; 900]].concat()).collect();
        let place = || table.place(5, "um_1").expect("a place");
        let done = AtomicBool::new(false);
        let (taken, torn) = std::thread::scope(|scope| {
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let (mut taken, mut torn) = (0u64, 0u64);
                        while !done.load(Ordering::Relaxed) {
                            if let Some(bytes) = place().find(|b| Some(b.to_vec())) {
                                taken += 1;
                                torn += u64::from(!versions.contains(&bytes));
                            }
                        }
                        (taken, torn)
                    })
                })
                .collect();
            for i in 0..200_000 {
                place().file(&versions[i % 2]);
            }
            done.store(true, Ordering::Relaxed);
            readers.into_iter().map(|r| r.join().expect("a reader")).fold((0, 0), |t, r| (t.0 + r.0, t.1 + r.1))
        });
        assert!(taken > 0, "no read found an entry");
        assert_eq!(torn, 0, "{torn} of {taken} reads took a torn entry");
    }

    #[test]
    fn an_ids_two_buckets_differ() {
        let table = Small::leaked(8, [1; 16]);
        for i in 0..200 {
            let place = table.place(5, &format!("um_{i}")).expect("a place");
            assert_ne!(place.buckets[0].as_ptr(), place.buckets[1].as_ptr());
        }
        assert!(Small::leaked(3, [1; 16]).place(5, "um_1").is_none(), "fewer slots than a bucket");
        assert!(Small::EMPTY.place(5, "um_1").is_none(), "no table");
    }

    #[test]
    fn an_entry_reads_back_whole_and_one_too_long_is_not_filed() {
        let table = Small::leaked(8, [2; 16]);
        let place = table.place(5, "g").expect("a place");
        let longest = entry("g", Slot::<14>::MAX_ENTRY);
        assert!(place.file(&longest));
        assert_eq!(place.find(|b| Some(b.to_vec())), Some(longest));
        assert!(!place.file(&entry("g", Slot::<14>::MAX_ENTRY + 1)), "one byte more than a slot holds");
        assert!(!place.file(&[]), "an empty entry (a length of 0 reads as an empty slot)");
        let shorter = entry("g", 5);
        assert!(place.file(&shorter));
        assert_eq!(place.find(|b| Some(b.to_vec())), Some(shorter), "a shorter entry over a longer one");
    }

    #[test]
    fn slot_sizes_are_what_the_settings_say() {
        assert_eq!(Slot::<126>::BYTES, 1024);
        assert_eq!(Slot::<62>::BYTES, 512);
    }
}

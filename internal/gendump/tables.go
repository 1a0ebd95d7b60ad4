package gendump

import (
	"math"
	"strings"
)

type column struct{ name, def string }

type table struct {
	name   string
	weight int64
	cols   []column
	pk     []string
	keys   []string // index clauses after the primary key
	fill   func(g *gen, i int64)
}

// createTable renders the schema file. It holds the CREATE TABLE alone,
// without mydumper's "SET NAMES" line, so that the file can also be run as it
// is on a connection that does not allow multiple statements.
func (t *table) createTable() string {
	var lines []string
	for _, c := range t.cols {
		lines = append(lines, "  `"+c.name+"` "+c.def)
	}
	if len(t.pk) > 0 {
		lines = append(lines, "  PRIMARY KEY (`"+strings.Join(t.pk, "`,`")+"`)")
	}
	for _, k := range t.keys {
		lines = append(lines, "  "+k)
	}
	return "CREATE TABLE `" + t.name + "` (\n" + strings.Join(lines, ",\n") + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
}

// allTables is the fixed order of Tables, of the row split and of the
// format alternation of mixed dumps.
var allTables = []*table{
	{
		name:   "customers",
		weight: 20,
		// Everything but id is NULLable or defaulted, so a bare
		// INSERT (id) works; no value holds a line break, so line N of a
		// CSV file is row N-1 (with a header).
		cols: []column{
			{"id", "bigint(20) NOT NULL"},
			{"name", "varchar(100) DEFAULT NULL"},
			{"email", "varchar(255) DEFAULT NULL"},
			{"country", "char(2) DEFAULT NULL"},
			{"age", "int(11) DEFAULT NULL"},
			{"born", "date DEFAULT NULL"},
			{"balance", "decimal(12,2) NOT NULL DEFAULT 0.00"},
			{"vip", "tinyint(1) NOT NULL DEFAULT 0"},
			{"created_at", "datetime NOT NULL DEFAULT current_timestamp()"},
		},
		pk: []string{"id"},
		// A prefix key and a composite one, unnamed: the server names
		// it after its first column.
		keys: []string{"KEY `idx_name` (`name`(20))", "KEY (`country`,`age`) USING BTREE COMMENT 'by country, then age'"},
		fill: fillCustomers,
	},
	{
		name:   "orders",
		weight: 40,
		cols: []column{
			{"id", "bigint(20) NOT NULL"},
			{"customer_id", "bigint(20) NOT NULL"},
			{"amount", "decimal(14,4) NOT NULL"},
			{"currency", "char(3) NOT NULL DEFAULT 'EUR'"},
			{"ordered_at", "datetime NOT NULL"},
			{"updated_at", "datetime(6) DEFAULT NULL"},
			{"status", "tinyint(4) NOT NULL DEFAULT 0"},
			{"note", "varchar(200) DEFAULT NULL"},
		},
		pk:   []string{"id"},
		keys: []string{"KEY `idx_customer` (`customer_id`,`ordered_at`)", "INDEX `idx_status` (`status`,`ordered_at`)"},
		fill: fillOrders,
	},
	{
		name:   "events",
		weight: 25,
		// No key at all: the importer cannot rely on one to deduplicate, so
		// seq keeps the rows distinct for the tests' multiset comparison.
		cols: []column{
			{"seq", "bigint(20) NOT NULL"},
			{"kind", "varchar(32) NOT NULL"},
			{"payload", "text DEFAULT NULL"},
			{"raw", "varbinary(32) DEFAULT NULL"},
			{"body", "blob DEFAULT NULL"},
			{"created_at", "datetime(6) NOT NULL"},
		},
		// A FULLTEXT key and a composite one on a table without a primary
		// key.
		keys: []string{"KEY `idx_kind_time` (`kind`,`created_at`)", "FULLTEXT KEY `ft_payload` (`payload`)"},
		fill: fillEvents,
	},
	{
		name:   "wide",
		weight: 15,
		cols: []column{
			{"id", "int(11) NOT NULL"},
			{"t_tiny", "tinyint(4) DEFAULT NULL"},
			{"t_utiny", "tinyint(3) unsigned DEFAULT NULL"},
			{"t_small", "smallint(6) DEFAULT NULL"},
			{"t_usmall", "smallint(5) unsigned DEFAULT NULL"},
			{"t_medium", "mediumint(9) DEFAULT NULL"},
			{"t_umedium", "mediumint(8) unsigned DEFAULT NULL"},
			{"t_int", "int(11) DEFAULT NULL"},
			{"t_uint", "int(10) unsigned DEFAULT NULL"},
			{"t_big", "bigint(20) DEFAULT NULL"},
			{"t_ubig", "bigint(20) unsigned DEFAULT NULL"},
			{"t_dec", "decimal(20,6) DEFAULT NULL"},
			{"t_char", "char(8) DEFAULT NULL"},
			{"t_varchar", "varchar(64) DEFAULT NULL"},
			{"t_date", "date DEFAULT NULL"},
			{"t_time", "time DEFAULT NULL"},
			{"t_year", "year(4) DEFAULT NULL"},
			{"t_dt", "datetime DEFAULT NULL"},
			{"t_enum", "enum('small','medium','large','x-large') DEFAULT NULL"},
			{"t_set", "set('red','green','blue','black') DEFAULT NULL"},
			{"t_bool", "tinyint(1) DEFAULT NULL"},
			{"t_bin", "binary(4) DEFAULT NULL"},
		},
		pk:   []string{"id"},
		fill: fillWide,
	},
}

var (
	dayMin   = daysFrom(1000, 1, 1) // DATE and DATETIME range
	dayMax   = daysFrom(9999, 12, 31)
	day1930  = daysFrom(1930, 1, 1)
	day1990  = daysFrom(1990, 1, 1)
	day2007  = daysFrom(2007, 1, 1)
	day2015  = daysFrom(2015, 1, 1)
	day2020  = daysFrom(2020, 1, 1)
	day2026  = daysFrom(2026, 1, 1)
	day2031  = daysFrom(2031, 1, 1)
	secsMin  = dayMin * 86400
	secsMax  = dayMax*86400 + 86399
	secs2015 = day2015 * 86400
	secs2020 = day2020 * 86400
	secs2026 = day2026*86400 - 1
)

// Names with the characters that break naive CSV and SQL writers: quotes,
// commas, backslashes, multi-byte UTF-8, and the text "NULL".
var (
	firstNames = []string{"Anna", "Ben", "Chloé", "José", "Zoë", "Łukasz", "Øyvind", "Mårten", "Ünal", "Дмитрий",
		"محمد", "李", "さくら", "Saoirse", "D'Arcy", "Jean-Luc", `Mary "May"`, `Back\slash`, "Ngozi", "Ana María"}
	lastNames = []string{"Smith", "Müller", "O'Brien", "Nguyễn", "García", "van der Berg", "Smith, Jr.", `"The Rock"`,
		`Back\\Slash`, "王", "Ødegård", "🙂", "NULL", "Kowalski", "Sæther", "Dupont-Lefèvre", "Ó Súilleabháin"}
	asciiFirst = []string{"anna", "ben", "chloe", "jose", "zoe", "lukasz", "oyvind", "marten", "unal", "ngozi"}
	asciiLast  = []string{"smith", "mueller", "obrien", "nguyen", "garcia", "berg", "kowalski", "dupont"}
	domains    = []string{"example.com", "example.org", "mail.example.net", "example.co.uk", "xn--bcher-kva.example"}
	oddEmails  = []string{`"john,doe"@example.com`, `o'brien@example.ie`, `"back\\slash"@example.org`,
		`"say \"hi\""@example.net`, `josé.müller@exämple.de`, `李雷@例子.中国`, `x@y`, `NULL@example.com`, ` leading.space@example.com`, ""}
	countries  = []string{"DE", "FR", "US", "JP", "BR", "IN", "NG", "SE", "PL", "CN"}
	currencies = []string{"EUR", "USD", "JPY", "GBP", "CHF", "PLN"}
	orderNotes = []string{"leave at door", "gift, please wrap", `call "front desk"`, "it's fragile", `C:\orders\new`,
		"Grüße aus Köln", "express 🚚", "NULL", `\N`, "", "  padded  ", "50% off; 'promo'", "a,b,c", "日本へ発送"}
	eventKinds = []string{"click", "view", "purchase", "signup", "logout", "error", "ünïcödé", "a,b", `quote"d`, "NULL"}
	// Fragments of event payloads; joined at random they give line breaks
	// of both kinds, tabs, quotes of every kind, separators, backslashes
	// before every letter the readers treat specially, and SQL that must
	// stay inside its string.
	payloadParts = []string{"hello", "world", "lorem ipsum", " ", "\n", "\r\n", "\t", `"`, `'`, ",", `\`, `\\`, "NULL",
		`\N`, `\n`, `\0`, `\Z`, `\%`, `\_`, `"quoted"`, "it's", "a,b,c", "日本語テキスト", "Grüße", "emoji 🎉🚀", "Ω≈ç√",
		"--", "/*", "*/", "#", ";", "),(", "0x41", "`", "  trailing  ", "\r", "''", `""`, "\n\n"}
	shortPayloads = []string{"\n", "\r\n", "\r", `\`, `"`, `'`, ",", " ", "\t", `\\N`, "N", `"\N"`, "NULL ", " NULL"}
	// Bytes that need escaping somewhere, over-represented in binary values.
	specialBytes = []byte{0x00, 0x5c, 0x22, 0x27, 0x0a, 0x0d, 0xff, 0x1a, 0x09, 0x2c, 0x25, 0x5f, 0x4e, 0x80}
	// One character each; the wide table builds CHAR and VARCHAR values
	// from them.
	chars    = []string{"a", "b", "z", "A", "Q", "0", "7", " ", ",", "'", `"`, `\`, "ä", "ß", "é", "日", "本", "🙂", "-", "_", "%"}
	enumVals = []string{"small", "medium", "large", "x-large"}
	setVals  = []string{"red", "green", "blue", "black"}
	pow10    = func() (t [20]uint64) {
		t[0] = 1
		for i := 1; i < len(t); i++ {
			t[i] = t[i-1] * 10
		}
		return t
	}()
)

func fillCustomers(g *gen, i int64) {
	w := &g.row
	w.int(i + 1)

	if g.pct(3) {
		w.null()
	} else {
		w.buf = append(w.buf, g.pick(firstNames)...)
		w.buf = append(w.buf, ' ')
		w.buf = append(w.buf, g.pick(lastNames)...)
		w.end(kindText)
	}

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 15:
		w.text(g.pick(oddEmails))
	default:
		w.buf = append(w.buf, g.pick(asciiFirst)...)
		w.buf = append(w.buf, '.')
		w.buf = append(w.buf, g.pick(asciiLast)...)
		w.buf = appendPadded(w.buf, uint64(g.r.IntN(1000)), 1)
		w.buf = append(w.buf, '@')
		w.buf = append(w.buf, g.pick(domains)...)
		w.end(kindText)
	}

	if g.pct(4) {
		w.null()
	} else {
		w.text(g.pick(countries))
	}

	switch p := g.r.IntN(100); {
	case p < 8:
		w.null()
	case p < 9:
		w.int(math.MinInt32)
	case p < 10:
		w.int(math.MaxInt32)
	default:
		w.int(g.between(0, 120))
	}

	switch p := g.r.IntN(1000); {
	case p < 60:
		w.null()
	case p < 63:
		w.date(dayMin)
	case p < 66:
		w.date(dayMax)
	default:
		w.date(g.between(day1930, day2007-1))
	}

	switch p := g.r.IntN(1000); {
	case p < 100:
		w.decimal(false, 0, 0, 2)
	case p < 103:
		w.decimal(false, pow10[10]-1, 99, 2)
	case p < 106:
		w.decimal(true, pow10[10]-1, 99, 2)
	default:
		w.decimal(p < 300, g.r.Uint64N(100000), g.r.Uint64N(100), 2)
	}

	w.bool(g.pct(10))
	w.datetime(g.between(secs2015, secs2026), 0, false)
}

func fillOrders(g *gen, i int64) {
	w := &g.row
	w.int(i + 1)
	w.int(1 + g.r.Int64N(g.customers))

	switch p := g.r.IntN(1000); {
	case p < 50:
		w.decimal(false, 0, 0, 4)
	case p < 53:
		w.decimal(false, pow10[10]-1, 9999, 4)
	case p < 56:
		w.decimal(true, pow10[10]-1, 9999, 4)
	default: // refunds are negative
		w.decimal(p < 150, g.r.Uint64N(100000), g.r.Uint64N(10000), 4)
	}

	w.text(g.pick(currencies))
	at := g.between(secs2015, secs2026)
	w.datetime(at, 0, false)

	switch p := g.r.IntN(1000); {
	case p < 120:
		w.null()
	case p < 122:
		w.datetime(secsMax, 999999, true)
	case p < 124:
		w.datetime(secsMin, 0, true)
	case p < 140: // a whole second still prints six zeros
		w.datetime(at+g.r.Int64N(90*86400), 0, true)
	default:
		w.datetime(at+g.r.Int64N(90*86400), g.r.Int64N(1000000), true)
	}

	switch p := g.r.IntN(1000); {
	case p < 5:
		w.int(math.MinInt8)
	case p < 10:
		w.int(math.MaxInt8)
	default:
		w.int(int64(g.r.IntN(5)))
	}

	if g.pct(40) {
		w.null()
	} else {
		w.text(g.pick(orderNotes))
	}
}

func fillEvents(g *gen, i int64) {
	w := &g.row
	w.rawCtl = g.pct(30)
	w.int(i + 1)
	w.text(g.pick(eventKinds))

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 8:
		w.text("NULL")
	case p < 11:
		w.text(`\N`)
	case p < 14:
		w.text("")
	case p < 18:
		w.text(g.pick(shortPayloads))
	default:
		n := 1 + g.r.IntN(8)
		if g.pct(1) {
			n = 200 + g.r.IntN(400)
		}
		for range n {
			w.buf = append(w.buf, g.pick(payloadParts)...)
		}
		w.end(kindText)
	}

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 10:
		g.bytes(0)
	default:
		g.bytes(1 + g.r.IntN(32))
	}

	switch p := g.r.IntN(100); {
	case p < 8:
		w.null()
	case p < 12:
		g.bytes(0)
	case p < 13: // a few large ones, across the reader's buffer refills
		g.bytes(1000 + g.r.IntN(4000))
	default:
		g.bytes(1 + g.r.IntN(64))
	}

	w.datetime(g.between(secs2020, secs2026), g.r.Int64N(1000000), true)
}

// bytes appends a binary field of n random bytes, many of them ones that
// need escaping.
func (g *gen) bytes(n int) {
	w := &g.row
	for range n {
		x := g.r.Uint32()
		if x&7 < 3 {
			w.buf = append(w.buf, specialBytes[(x>>8)%uint32(len(specialBytes))])
		} else {
			w.buf = append(w.buf, byte(x>>24))
		}
	}
	w.end(kindBin)
}

// intCol appends an integer in [lo, hi], often NULL or an extreme.
func (g *gen) intCol(lo, hi int64) {
	w := &g.row
	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 11:
		w.int(lo)
	case p < 17:
		w.int(hi)
	case p < 20:
		w.int(0)
	case lo == math.MinInt64 && hi == math.MaxInt64:
		w.int(int64(g.r.Uint64()))
	default:
		w.int(g.between(lo, hi))
	}
}

func (g *gen) uintCol(hi uint64) {
	w := &g.row
	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 11:
		w.uint(0)
	case p < 17:
		w.uint(hi)
	case hi == math.MaxUint64:
		w.uint(g.r.Uint64())
	default:
		w.uint(g.r.Uint64N(hi + 1))
	}
}

// chars appends up to n characters of the chars list.
func (g *gen) chars(n int) {
	w := &g.row
	for range n {
		w.buf = append(w.buf, g.pick(chars)...)
	}
}

func fillWide(g *gen, i int64) {
	w := &g.row
	w.int(i + 1)
	g.intCol(math.MinInt8, math.MaxInt8)
	g.uintCol(math.MaxUint8)
	g.intCol(math.MinInt16, math.MaxInt16)
	g.uintCol(math.MaxUint16)
	g.intCol(-1<<23, 1<<23-1)
	g.uintCol(1<<24 - 1)
	g.intCol(math.MinInt32, math.MaxInt32)
	g.uintCol(math.MaxUint32)
	g.intCol(math.MinInt64, math.MaxInt64)
	g.uintCol(math.MaxUint64)

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 6:
		w.decimal(false, pow10[14]-1, pow10[6]-1, 6)
	case p < 7:
		w.decimal(true, pow10[14]-1, pow10[6]-1, 6)
	default:
		w.decimal(g.pct(30), g.r.Uint64N(pow10[g.r.IntN(15)]), g.r.Uint64N(pow10[6]), 6)
	}

	// CHAR: MariaDB strips trailing spaces on read, so none are generated.
	if g.pct(5) {
		w.null()
	} else {
		start := len(w.buf)
		g.chars(g.r.IntN(9))
		if len(w.buf) > start && w.buf[len(w.buf)-1] == ' ' {
			w.buf[len(w.buf)-1] = 'x'
		}
		w.end(kindText)
	}

	// VARCHAR keeps trailing spaces.
	if g.pct(5) {
		w.null()
	} else {
		g.chars(g.r.IntN(31))
		if g.pct(10) {
			w.buf = append(w.buf, "  "...)
		}
		w.end(kindText)
	}

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 7:
		w.date(dayMin)
	case p < 9:
		w.date(dayMax)
	case p < 50:
		w.date(g.between(dayMin, dayMax))
	default:
		w.date(g.between(day1990, day2031-1))
	}

	const maxTime = 838*3600 + 59*60 + 59
	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 7:
		w.buf = append(w.buf, '-')
		w.buf = appendClock(w.buf, maxTime)
		w.end(kindText)
	case p < 9:
		w.buf = appendClock(w.buf, maxTime)
		w.end(kindText)
	case p < 80:
		w.buf = appendClock(w.buf, uint64(g.r.IntN(86400)))
		w.end(kindText)
	default:
		s := g.between(-maxTime, maxTime)
		if s < 0 {
			w.buf = append(w.buf, '-')
			s = -s
		}
		w.buf = appendClock(w.buf, uint64(s))
		w.end(kindText)
	}

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 7:
		w.text("1901")
	case p < 9:
		w.text("2155")
	default:
		w.buf = appendPadded(w.buf, uint64(g.between(1901, 2155)), 4)
		w.end(kindText)
	}

	switch p := g.r.IntN(100); {
	case p < 5:
		w.null()
	case p < 7:
		w.datetime(secsMin, 0, false)
	case p < 9:
		w.datetime(secsMax, 0, false)
	default:
		w.datetime(g.between(day1990*86400, day2031*86400-1), 0, false)
	}

	if g.pct(5) {
		w.null()
	} else {
		w.text(g.pick(enumVals))
	}

	if g.pct(5) {
		w.null()
	} else {
		// Members in definition order, as MariaDB prints them; 0 is the
		// empty set, "".
		mask := g.r.IntN(16)
		first := true
		for b, v := range setVals {
			if mask&(1<<b) != 0 {
				if !first {
					w.buf = append(w.buf, ',')
				}
				w.buf = append(w.buf, v...)
				first = false
			}
		}
		w.end(kindText)
	}

	if g.pct(5) {
		w.null()
	} else {
		w.bool(g.pct(50))
	}

	// BINARY(4) pads shorter values with NULs, so always four bytes.
	if g.pct(5) {
		w.null()
	} else {
		g.bytes(4)
	}
}

-- 0001_normalise: the SQL twins of sb_phone_e164() and sb_email_normalize(), so that a
-- number or address stored in customers matches what an event carries (SPEC "Matching
-- and mapping"). The rules are in common/sb_phone.h; common/sb_phone.c and this file
-- must change together. tests/data/phone_cases.tsv is checked against both
-- (tests/unit/test_phone.c, tests/integration/test_phone_sql.py).
--
-- Like the C code, only ASCII is interpreted: letters are mapped and folded with
-- translate(), never upper()/lower() or a case-insensitive regex, whose Unicode folding
-- depends on the collation; every other character is punctuation. Patterns are E''
-- strings, so they mean the same whatever standard_conforming_strings says.
-- Only CREATE OR REPLACE: running this file twice is harmless.

-- E.164 ("+" and 8 to 15 digits) of a phone number as a person wrote it, or NULL.
-- default_cc is the country code of national numbers, digits only ("1", "44").
CREATE OR REPLACE FUNCTION sb_e164(phone text, default_cc text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $sb_e164$
DECLARE
    ws constant text := E'[ \\t\\n\\r\\f\\v]'; -- the C isspace() set of the C locale
    s text;
    intl boolean;
    d text;
    n text;
BEGIN
    IF phone IS NULL OR default_cc IS NULL OR default_cc !~ '^[1-9][0-9]{0,2}$'
       OR octet_length(phone) NOT BETWEEN 1 AND 64 THEN
        RETURN NULL;
    END IF;
    -- 1. a trailing extension: marker, digits, end
    s := regexp_replace(phone,
        '([eE][xX][tT][eE][nN][sS][iI][oO][nN]|[eE][xX][tT][.]?|[xX]|#|;[eE][xX][tT]=)'
        || ws || '*[0-9]+' || ws || '*$', '');
    -- 3. "(0)", the trunk prefix written inside international numbers
    s := regexp_replace(s, '[(]' || ws || '*0' || ws || '*[)]', '', 'g');
    IF s !~ '[0-9]' THEN
        RETURN NULL; -- letters alone are a word, not a number
    END IF;
    -- 2. keypad letters
    s := translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
                      '2223334445556667777888999922233344455566677778889999');
    -- 3. "+" before the first digit: the country code is there already
    intl := substring(s from '[0-9+]') = '+';
    -- 5. everything else is punctuation
    d := regexp_replace(s, '[^0-9]', '', 'g');
    IF intl THEN
        n := d;
    ELSIF left(d, 2) = '00' THEN
        n := substr(d, 3);
    ELSIF default_cc = '1' AND left(d, 3) = '011' THEN
        n := substr(d, 4);
    ELSIF default_cc = '1' THEN -- 4. NANP
        IF length(d) = 10 THEN
            n := '1' || d;
        ELSIF length(d) = 11 AND left(d, 1) = '1' THEN
            n := d;
        ELSE
            RETURN NULL;
        END IF;
    ELSE -- 4. one trunk "0" gives way to the country code
        n := default_cc || CASE WHEN left(d, 1) = '0' THEN substr(d, 2) ELSE d END;
    END IF;
    IF length(n) NOT BETWEEN 8 AND 15 THEN
        RETURN NULL; -- 6.
    END IF;
    RETURN '+' || n;
END
$sb_e164$;

-- The lower-case address of "addr@example.com" or "Name <Addr@Example.COM>", or NULL:
-- the text inside the last <...> if any, trimmed; exactly one "@" with text on both
-- sides, at most 254 bytes, no whitespace, control character or RFC 5322 special.
CREATE OR REPLACE FUNCTION sb_email_norm(addr text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $sb_email_norm$
DECLARE
    s text := addr;
BEGIN
    IF addr IS NULL THEN
        RETURN NULL;
    END IF;
    IF position('<' in s) > 0 THEN
        s := substring(substring(s from '<([^<]*)$') from '^([^>]*)>');
        IF s IS NULL THEN
            RETURN NULL; -- "<" never closed
        END IF;
    END IF;
    s := btrim(s, E' \t\n\r\f\x0b');
    IF octet_length(s) NOT BETWEEN 1 AND 254
       OR s !~ '^[^@]+@[^@]+$'
       OR s ~ E'[\\x01-\\x20\\x7f()<>\\[\\]:;\\\\,"]' THEN
        RETURN NULL;
    END IF;
    RETURN translate(s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
END
$sb_email_norm$;

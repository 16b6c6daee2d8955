-- Names in any script. String search compared the unaccented lower case of the text as sent,
-- so one name typed two ways did not match itself: Unicode lets "é" be one code point (NFC) or
-- e + U+0301 (NFD, as macOS and some keyboards send it). unaccent drops the lone accent, which
-- hid this for Latin letters, but not for letters it keeps whole: Cyrillic "й" typed as
-- и + U+0306 became "и", Hangul syllables typed as jamo matched nothing. Both sides are now
-- composed (NFC) before unaccent and lower, and :exact compares the composed forms
-- (registry/search.c), so canonically equivalent spellings are the same name. Content is
-- stored as sent; only the index's normal form changes.

-- NFC, where the database can do it: normalize() needs a UTF8 database (the embedded cluster
-- is one); in another encoding there is no second spelling to fold, so the text is kept.
DO $do$
BEGIN
    IF current_setting('server_encoding') = 'UTF8' THEN
        CREATE FUNCTION mahali_nfc(t text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT normalize(t, NFC) $f$;
    ELSE
        CREATE FUNCTION mahali_nfc(t text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT t $f$;
    END IF;
END
$do$;

-- As in 0002, composed first. IMMUTABLE stays true: NFC and the unaccent dictionary are fixed
-- for an installation.
CREATE OR REPLACE FUNCTION mahali_norm(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(public.unaccent('public.unaccent'::regdictionary, mahali_nfc(t)))
$$;

-- The normal forms already stored: only those of decomposed text change.
UPDATE sp_string SET norm = mahali_norm(value) WHERE norm <> mahali_norm(value);

/// Turns user text into an FTS5 query that matches documents containing any of its words.
///
/// FTS5's default operator between terms is AND, and its syntax gives meaning to `"`, `*`, `:`,
/// `^`, `-`, `(`, `)`, `+`, `NEAR`, `AND`, `OR` and `NOT`. The text is split into words (runs of
/// letters and digits, as the `unicode61` tokenizer sees them); each word is written as a quoted
/// string (so every operator is searched literally) and the words are joined with `OR`.
enum FTSQuery {
    /// The FTS5 query for `text`, or nil when it holds no word.
    static func build(_ text: String) -> String? {
        var words: [String] = []
        var seen = Set<String>()
        var current = ""
        func flush() {
            if !current.isEmpty, seen.insert(current.lowercased()).inserted { words.append(current) }
            current = ""
        }
        for character in text {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else {
                flush()
            }
        }
        flush()
        guard !words.isEmpty else { return nil }
        // A word holds letters and digits only, so it never contains the quote that would end the
        // quoted string.
        return words.map { "\"" + $0 + "\"" }.joined(separator: " OR ")
    }
}

import Foundation

/// BERT's uncased tokenizer: the normaliser, the pre-tokeniser and WordPiece, as the Hugging Face
/// `tokenizers` library runs them for `BertNormalizer` + `BertPreTokenizer` + `WordPiece`.
///
/// 1. Clean: drop NUL, U+FFFD and control, format and private-use characters (Cc, Cf, Co — tab,
///    newline and carriage return excepted, so vertical tab, form feed and U+0085 are dropped);
///    then turn every remaining white-space character into a space.
/// 2. Put spaces around CJK ideographs, so each becomes a word of its own.
/// 3. Strip accents (canonical decomposition, then drop non-spacing marks), then lower-case.
/// 4. Split on white space, and around every punctuation character (ASCII punctuation and the
///    Unicode P* categories).
/// 5. WordPiece: greedy longest match from the vocabulary, continuation pieces prefixed `##`; a
///    word with no full match, or longer than 100 characters, becomes `[UNK]`.
/// 6. `[CLS]` + pieces + `[SEP]`, the pieces cut so the whole is at most `maxTokens`.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let unknown: Int32
    public let classify: Int32
    public let separator: Int32
    /// `[PAD]`'s id (0 when the vocabulary has none).
    public let padding: Int32
    public let maxTokens: Int
    public static let maxCharactersPerWord = 100

    /// Reads a `vocab.txt` (one token per line; the line number is the id).
    public init(vocabularyFile path: String, maxTokens: Int) throws(WordPieceError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WordPieceError(message: "cannot read the vocabulary '\(path)'")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw WordPieceError(message: "the vocabulary '\(path)' is not UTF-8 text")
        }
        // One token per line, LF or CRLF; split on scalars ("\r\n" is one Character). As in
        // `tokenizers`, trailing white space is trimmed and a repeated token keeps its last id.
        var vocabulary: [String: Int32] = [:]
        var lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // the final newline
        for (id, line) in lines.enumerated() {
            var token = String(String.UnicodeScalarView(line))
            while let last = token.unicodeScalars.last, last.properties.isWhitespace { token.unicodeScalars.removeLast() }
            vocabulary[token] = Int32(id)
        }
        try self.init(vocabulary: vocabulary, maxTokens: maxTokens, source: path)
    }

    public init(vocabulary: [String: Int32], maxTokens: Int, source: String = "vocabulary") throws(WordPieceError) {
        func special(_ token: String) throws(WordPieceError) -> Int32 {
            guard let id = vocabulary[token] else { throw WordPieceError(message: "\(source) has no '\(token)' token; is it a BERT vocab.txt?") }
            return id
        }
        guard maxTokens >= 3 else { throw WordPieceError(message: "'maxTokens' must be at least 3 ([CLS], one piece, [SEP]), got \(maxTokens)") }
        self.vocabulary = vocabulary
        self.maxTokens = maxTokens
        unknown = try special("[UNK]")
        classify = try special("[CLS]")
        separator = try special("[SEP]")
        padding = vocabulary["[PAD]"] ?? 0
    }

    /// Token ids for `text`, `[CLS]` and `[SEP]` included.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [classify]
        let budget = maxTokens - 2
        outer: for word in Self.words(text) {
            for id in pieces(word) {
                if ids.count - 1 >= budget { break outer }
                ids.append(id)
            }
        }
        ids.append(separator)
        return ids
    }

    /// The pieces of one pre-tokenised word.
    public func pieces(_ word: [Unicode.Scalar]) -> [Int32] {
        guard word.count <= Self.maxCharactersPerWord else { return [unknown] }
        var out: [Int32] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                var piece = start > 0 ? "##" : ""
                piece.unicodeScalars.append(contentsOf: word[start..<end])
                if let id = vocabulary[piece] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else { return [unknown] }
            out.append(found)
            start = end
        }
        return out
    }

    // MARK: Normalising and pre-tokenising

    /// The words of `text` after normalisation: runs of non-space characters, with every
    /// punctuation character and CJK ideograph a word of its own.
    public static func words(_ text: String) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        func flush() {
            if !current.isEmpty {
                words.append(current)
                current.removeAll(keepingCapacity: true)
            }
        }
        for scalar in normalise(text) {
            if scalar == " " {
                flush()
            } else if isPunctuation(scalar) || isCJK(scalar) {
                flush()
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        flush()
        return words
    }

    /// Clean, strip accents, lower-case. White space comes out as " ".
    public static func normalise(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.utf8.count)
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            // ASCII: no accents to strip, and case and class are plain byte ranges.
            for byte in text.utf8 {
                switch byte {
                case 0x09, 0x0A, 0x0D, 0x20: out.append(" ")
                case 0x00...0x1F, 0x7F: continue  // controls, vertical tab and form feed included
                case 0x41...0x5A: out.append(Unicode.Scalar(byte | 0x20))
                default: out.append(Unicode.Scalar(byte))
                }
            }
            return out
        }
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar == "\0" || scalar == "\u{FFFD}" || isOther(scalar) { continue }
            cleaned.append(isWhitespace(scalar) ? " " : scalar)
        }
        let decomposed = String(cleaned).decomposedStringWithCanonicalMapping
        for scalar in decomposed.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
            if scalar.properties.changesWhenLowercased {
                out.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return out
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case " ", "\t", "\n", "\r": true
        default: scalar.properties.isWhitespace
        }
    }

    /// Control, format and private-use characters (Cc, Cf, Co), tab, newline and carriage return
    /// excepted (they are white space). Unassigned code points are kept, as `tokenizers` keeps them.
    static func isOther(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "\t", "\n", "\r": return false
        default: break
        }
        switch scalar.properties.generalCategory {
        case .control, .format, .privateUse: return true
        default: return false
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII {
            let v = scalar.value
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v)
        }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
            .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// The CJK Unified Ideographs blocks and their extensions and compatibility blocks (not
    /// Hangul, Hiragana or Katakana, which BERT treats as letters).
    static func isCJK(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            true
        default:
            false
        }
    }
}

/// A vocabulary that cannot be used; `message` says why.
public struct WordPieceError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

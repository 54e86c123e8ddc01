import Foundation
import OrionTestSupport
import OrionWordPiece
import Testing

/// The tokenizer against the Hugging Face `tokenizers` library's output for all-MiniLM-L6-v2's
/// tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece); each expectation below was
/// printed by that library.
@Suite struct WordPieceTests {
    let tokenizer: WordPieceTokenizer
    let tokens: [Int32: String]

    init() throws {
        tokenizer = try WordPieceTokenizer(vocabularyFile: EmbedFiles.vocabulary, maxTokens: 256)
        tokens = Dictionary(uniqueKeysWithValues: tokenizer.vocabulary.map { ($0.value, $0.key) })
    }

    func pieces(_ text: String) -> [String] { tokenizer.encode(text).map { tokens[$0] ?? "?" } }

    @Test func accentsAreStrippedAndCaseFolded() {
        #expect(
            pieces("Café naïve résumé, Ñandú à la crème brûlée")
                == ["[CLS]", "cafe", "naive", "resume", ",", "nan", "##du", "a", "la", "cr", "##eme", "br", "##ule", "##e", "[SEP]"])
        #expect(pieces("HeLLo WORLD") == ["[CLS]", "hello", "world", "[SEP]"])
        // Accents go before lower-casing: İ decomposes to I + a combining dot, which is dropped.
        #expect(pieces("İstanbul straße ﬁne") == ["[CLS]", "istanbul", "st", "##raße", "ﬁ", "##ne", "[SEP]"])
        #expect(
            pieces("Ελληνικά Привет мир")
                == ["[CLS]", "ε", "##λ", "##λ", "##η", "##ν", "##ι", "##κ", "##α", "п", "##р", "##и", "##в", "##е", "##т", "м", "##и", "##р", "[SEP]"])
    }

    @Test func cjkIdeographsStandAloneAndKanaDoesNot() {
        #expect(
            pieces("我爱北京天安门 and 東京タワー")
                == ["[CLS]", "我", "[UNK]", "北", "京", "天", "安", "[UNK]", "and", "東", "京", "タ", "##ワ", "##ー", "[SEP]"])
        // Hangul is not in the CJK blocks: decomposed to jamo, then WordPiece.
        #expect(
            pieces("한국어 텍스트")
                == ["[CLS]", "ᄒ", "##ᅡ", "##ᆫ", "##ᄀ", "##ᅮ", "##ᆨ", "##ᄋ", "##ᅥ", "ᄐ", "##ᅦ", "##ᆨ", "##ᄉ", "##ᅳ", "##ᄐ", "##ᅳ", "[SEP]"])
    }

    @Test func emojiAndSymbolsOutsideTheVocabularyAreUnknown() {
        #expect(pieces("I ❤️ pizza 🍕! 👩‍👩‍👧") == ["[CLS]", "i", "[UNK]", "pizza", "[UNK]", "!", "[UNK]", "[SEP]"])
        #expect(pieces("e = mc² ½ ①") == ["[CLS]", "e", "=", "mc", "##²", "½", "[UNK]", "[SEP]"])
    }

    @Test func emptyAndWhitespaceOnlyTextsAreClsSep() {
        #expect(pieces("") == ["[CLS]", "[SEP]"])
        #expect(pieces(" \t\n \u{3000} ") == ["[CLS]", "[SEP]"])
    }

    @Test func punctuationIsSplitOff() {
        #expect(
            pieces("don't stop—now! (really?) [x] {y} «z» “quoted”")
                == [
                    "[CLS]", "don", "'", "t", "stop", "—", "now", "!", "(", "really", "?", ")", "[", "x", "]", "{", "y", "}", "«", "z", "»", "“",
                    "quoted", "”", "[SEP]",
                ])
    }

    @Test func controlAndFormatCharactersAreDropped() {
        // U+200B and the soft hyphen are format characters; NUL and U+FFFD are dropped too.
        #expect(pieces("zero\u{200B}width\u{00AD}soft a\u{0000}b\u{FFFD}c") == ["[CLS]", "zero", "##wi", "##dt", "##hs", "##oft", "abc", "[SEP]"])
    }

    @Test func verticalTabFormFeedAndNextLineAreDroppedNotSpaces() {
        #expect(pieces("one\u{0C}page two\u{0B}three") == ["[CLS]", "one", "##page", "two", "##th", "##ree", "[SEP]"])
        #expect(pieces("a\u{85}b") == ["[CLS]", "ab", "[SEP]"])
    }

    @Test func unassignedAndPrivateUseCodePoints() {
        // Unassigned: kept, so the word is unknown. U+E0080 is unassigned too.
        #expect(pieces("n\u{0378}o") == ["[CLS]", "[UNK]", "[SEP]"])
        #expect(pieces("x\u{E0080}y") == ["[CLS]", "[UNK]", "[SEP]"])
        // Private use (Co): dropped.
        #expect(pieces("ab\u{E000}c") == pieces("abc"))
    }

    @Test func aCRLFVocabularyReadsTheSame() throws {
        let lines = (0..<tokens.count).map { tokens[Int32($0)] ?? "" }
        let path = TestPlugins.temporaryDirectory("vocab") + "/crlf.txt"
        try (lines.joined(separator: "\r\n") + "\r\n").write(toFile: path, atomically: true, encoding: .utf8)
        let crlf = try WordPieceTokenizer(vocabularyFile: path, maxTokens: 256)
        #expect(crlf.vocabulary == tokenizer.vocabulary)
    }

    @Test func wordPieceIsGreedyLongestMatchAndLongWordsAreUnknown() {
        #expect(
            pieces("unaffable antidisestablishmentarianism")
                == ["[CLS]", "una", "##ffa", "##ble", "anti", "##dis", "##est", "##ab", "##lish", "##ment", "##arian", "##ism", "[SEP]"])
        #expect(pieces(String(repeating: "x", count: 101)) == ["[CLS]", "[UNK]", "[SEP]"])
        #expect(pieces(String(repeating: "x", count: 100)) != ["[CLS]", "[UNK]", "[SEP]"])
    }

    @Test func textPastTheLimitIsCutBeforeSep() throws {
        let long = Array(repeating: "retrieval", count: 300).joined(separator: " ")
        let ids = tokenizer.encode(long)
        #expect(ids.count == 256)
        #expect(ids.first == tokenizer.classify && ids.last == tokenizer.separator)
        #expect(Set(ids.dropFirst().dropLast()) == [try #require(tokenizer.vocabulary["retrieval"])])
        let short = try WordPieceTokenizer(vocabulary: tokenizer.vocabulary, maxTokens: 5)
        #expect(short.encode("one two three four five six").count == 5)
        #expect(throws: WordPieceError.self) { try WordPieceTokenizer(vocabulary: tokenizer.vocabulary, maxTokens: 2) }
        #expect(throws: WordPieceError.self) { try WordPieceTokenizer(vocabulary: ["a": 0], maxTokens: 256) }
    }
}

import ModelKitCore
@testable import ModelKitData
import Testing

@Suite struct NpyTests {
    @Test func readsGoldenFiles() throws {
        let f4 = try NpyArray.read(fixture("npy/f4.npy"))
        #expect(f4.dtype == .float32 && f4.shape == [3, 4])
        #expect(f4.values == (0..<12).map { Float($0) * 0.5 - 2 })

        let oneD = try NpyArray.read(fixture("npy/f4-1d.npy"))
        #expect(oneD.shape == [3] && oneD.values == [1.5, -0.25, 1e-3])

        let scalar = try NpyArray.read(fixture("npy/f4-scalar.npy"))
        #expect(scalar.shape == Shape([]) && scalar.values == [3.25])

        let empty = try NpyArray.read(fixture("npy/f4-empty.npy"))
        #expect(empty.shape == [0, 3] && empty.values.isEmpty)

        let u1 = try NpyArray.read(fixture("npy/u1.npy"))
        #expect(u1.dtype == .uint8 && u1.shape == [2, 3] && u1.values == [0, 1, 127, 128, 254, 255])

        let i1 = try NpyArray.read(fixture("npy/i1.npy"))
        #expect(i1.dtype == .int8 && i1.values == [-128, -1, 0, 127])

        let i4 = try NpyArray.read(fixture("npy/i4.npy"))
        #expect(i4.dtype == .int32 && i4.shape == [2, 2] && i4.values == [-2_147_483_648, -7, 0, 16_777_216])

        let f8 = try NpyArray.read(fixture("npy/f8.npy"))
        #expect(f8.dtype == .float64 && f8.shape == [2, 2])
        #expect(f8.values == [Float(0.1 as Double), -2.5, Float(1e10 as Double), Float(Double.pi)])

        let v2 = try NpyArray.read(fixture("npy/f4-v2.npy"))
        #expect(v2.shape == [2, 1, 3] && v2.values == [0, 1, 2, 3, 4, 5])

        let v3 = try NpyArray.read(fixture("npy/u1-v3.npy"))
        #expect(v3.dtype == .uint8 && v3.shape == [5] && v3.values == [0, 1, 2, 3, 4])
    }

    @Test(arguments: [Shape([]), Shape([0, 3]), Shape([5]), Shape([2, 3, 4]), Shape([1, 1, 1, 1, 1, 1, 1, 2])])
    func writeReadRoundTrip(shape: Shape) throws {
        let count = shape.elementCount!
        let specials: [Float] = [-0.0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        let values = (0..<count).map { $0 < specials.count ? specials[$0] : Float($0) * 0.37 - 3 }
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try NpyArray(shape: shape, values: values).write(to: directory.file("a.npy"))
        let bytes = try FileSystem.readFile(directory.file("a.npy"))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect(bytes[6] == 1 && bytes[7] == 0)
        #expect((10 + headerLength) % 64 == 0 && bytes[10 + headerLength - 1] == 0x0A)
        let back = try NpyArray.read(directory.file("a.npy"))
        #expect(back.shape == shape && back.dtype == .float32)
        #expect(back.values.map(\.bitPattern) == values.map(\.bitPattern))
    }

    @Test func writerHeaderMatchesNumpysSpelling() throws {
        let bytes = try NpyArray(shape: [3], values: [1, 2, 3]).encoded()
        let header = String(decoding: bytes[10..<(bytes.count - 12)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }   "))
        // Byte-identical to numpy's own file for the same array.
        let numpy = try FileSystem.readFile(fixture("npy/f4-1d.npy"))
        let ours = try NpyArray(shape: [3], values: [1.5, -0.25, 1e-3]).encoded()
        #expect(ours == numpy)
    }

    @Test(arguments: [NpyDType.uint8, .int8, .int32, .float64])
    func writesInTheArraysOwnDType(dtype: NpyDType) throws {
        let values: [Float] = dtype == .uint8 ? [0, 7, 255] : [-128, 0, 127]
        let bytes = try NpyArray(shape: [3], values: values, dtype: dtype).encoded()
        #expect(String(decoding: bytes[10..<60], as: UTF8.self).contains("'descr': '\(dtype.rawValue)'"))
        #expect(bytes.count == 128 + 3 * dtype.byteSize)
        let back = try NpyArray.decode(bytes)
        #expect(back.dtype == dtype && back.values == values)
    }

    @Test func encodeRejectsValuesTheDTypeCannotHold() {
        expectDataError("unsupported", mentions: ["256", "|u1"]) {
            _ = try NpyArray(shape: [2], values: [1, 256], dtype: .uint8).encoded()
        }
        expectDataError("unsupported", mentions: ["0.5"]) {
            _ = try NpyArray(shape: [1], values: [0.5], dtype: .int32).encoded()
        }
    }

    @Test func encodeRejectsCountMismatch() {
        expectDataError("countMismatch", mentions: ["6 elements", "5 values"]) {
            _ = try NpyArray(shape: [2, 3], values: [1, 2, 3, 4, 5]).encoded()
        }
    }

    static func npy(header: String, data: [UInt8] = []) -> [UInt8] {
        let text = Array(header.utf8)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(text.count & 0xff), UInt8(text.count >> 8)] + text + data
    }

    @Test func headerParserToleratesSpacingAndKeyOrder() throws {
        let bytes = Self.npy(header: "{ 'shape' :( 2 ,1 , ) ,\"descr\":\t'<i4','fortran_order' :False }  \n",
                             data: [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff])
        let array = try NpyArray.decode(bytes)
        #expect(array.shape == [2, 1] && array.values == [1, -2] && array.dtype == .int32)
        let longs = try NpyArray.decode(Self.npy(header: "{'descr': '|u1', 'fortran_order': False, 'shape': (2L,)}\n", data: [4, 5]))
        #expect(longs.values == [4, 5])
    }

    @Test(arguments: [
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", "not a tuple"),
        ("{'descr': '<f4', 'fortran_order': False}", "lacks 'shape'"),
        ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", "duplicate key"),
        ("{'descr': '<f4', 'fortran_order': false, 'shape': ()}", "True or False"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "non-negative integer"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': ()} x", "after the dict"),
        ("{'descr': '<f4' 'fortran_order': False, 'shape': ()}", "expected ','"),
        ("{'descr': '<f4, 'fortran_order': False, 'shape': ()}", "expected ',' or '}'"),
        ("{'descr' '<f4', 'fortran_order': False, 'shape': ()}", "expected ':'"),
        ("['descr', '<f4']", "expected '{'"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "non-negative integer"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", "in shape"),
    ])
    func headerParserRejects(header: String, mention: String) {
        expectDataError("malformed", mentions: ["bad.npy", mention]) {
            _ = try NpyArray.decode(Self.npy(header: header + "\n"), name: "bad.npy")
        }
    }

    @Test func shapeOverflowAndLimits() {
        expectDataError("tooLarge", mentions: ["overflows"]) {
            _ = try NpyArray.decode(Self.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"))
        }
        expectDataError("tooLarge", mentions: ["64 bits"]) {
            _ = try NpyArray.decode(Self.npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"))
        }
        var limits = DataLimits.default
        limits.maxDecodedBytes = 8
        expectDataError("tooLarge", mentions: ["limit of 8"]) {
            _ = try NpyArray.read(fixture("npy/f4.npy"), limits: limits)
        }
    }

    @Test func dataLengthMustMatch() {
        let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,)}\n"
        expectDataError("truncated", mentions: ["3 data bytes, found 2"]) { _ = try NpyArray.decode(Self.npy(header: header, data: [1, 2])) }
        expectDataError("countMismatch", mentions: ["found 4"]) { _ = try NpyArray.decode(Self.npy(header: header, data: [1, 2, 3, 4])) }
    }

    @Test func versionsAndPreamble() {
        var bytes = Self.npy(header: "{'descr': '|u1', 'fortran_order': False, 'shape': ()}\n", data: [1])
        bytes[6] = 4
        expectDataError("unsupported", mentions: ["version 4.0"]) { _ = try NpyArray.decode(bytes) }
        expectDataError("badMagic") { _ = try NpyArray.decode([0x93, 0x4E]) }
        expectDataError("truncated") { _ = try NpyArray.decode([0x93] + Array("NUMPY".utf8) + [1]) }
        expectDataError("truncated", mentions: ["header declares"]) {
            _ = try NpyArray.decode([0x93] + Array("NUMPY".utf8) + [1, 0, 0xff, 0x00, 0x7b])
        }
    }
}

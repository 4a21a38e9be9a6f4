import ModelKitCore

/// Folds a constant Pad over the spatial axes of an NHWC tensor into the explicit padding of
/// the Conv2D, MaxPool2D or AveragePool2D that reads it.
///
/// - Conv2D: only a pad value of 0 (convolution padding is zeros).
/// - AveragePool2D: only a pad value of 0, and only with `countIncludePad` (otherwise the
///   padded zeros would leave the divisor).
/// - MaxPool2D: pooling padding is ignored (as if -infinity), so the Pad is folded only when its
///   value can never win: the input is known to be >= the pad value (it comes from a ReLU or
///   Clip) and every combined pad is smaller than the window, so each window keeps a real cell.
///
/// The Pad must not pad the batch or channel axis, and its output must be read by that one
/// op alone (as its data input) and not be a graph output.
public struct FoldPad: SingleRewritePass {
    public let name = "fold-pad"
    public let summary = "fold a zero spatial Pad into Conv2D/AveragePool2D padding (and MaxPool2D when safe)"

    public init() {}

    public func rewriteOne(_ graph: Graph) throws -> Graph? {
        let index = GraphIndex(graph)
        var facts: ShapeFacts?
        for (padIndex, node) in graph.nodes.enumerated() {
            guard case .pad(let pads, let value) = node.operation, pads.count == 8,
                  pads[0] == 0, pads[3] == 0, pads[4] == 0, pads[7] == 0,
                  let reader = index.soleReader(of: node.outputs[0]), reader.position == 0 else { continue }
            let consumer = graph.nodes[reader.node]
            if facts == nil { facts = try ShapeFacts(graph) }
            guard let padded = facts?.one[node.outputs[0]]?.shape else { continue }
            // [top, left, bottom, right] of the Pad (NHWC: H is axis 1, W axis 2).
            let extra = (pads[1], pads[2], pads[5], pads[6])
            let height = padded[1], width = padded[2]
            let newOperation: Operation
            switch consumer.operation {
            case .conv2D(var a):
                guard value == 0, let weight = facts?.one[consumer.inputs[1]]?.shape, weight.rank == 4 else { continue }
                a.padding = combine(a.padding, extra, height: height, width: width, kernel: (weight[1], weight[2]),
                                    stride: (a.strideH, a.strideW), dilation: (a.dilationH, a.dilationW))
                newOperation = .conv2D(a)
            case .averagePool2D(var a):
                guard value == 0, a.countIncludePad else { continue }
                a.padding = combine(a.padding, extra, height: height, width: width, kernel: (a.kernelH, a.kernelW),
                                    stride: (a.strideH, a.strideW))
                newOperation = .averagePool2D(a)
            case .maxPool2D(var a):
                guard let producer = index.producer[node.inputs[0]],
                      let bound = graph.nodes[producer].operation.outputLowerBound, value <= bound else { continue }
                a.padding = combine(a.padding, extra, height: height, width: width, kernel: (a.kernelH, a.kernelW),
                                    stride: (a.strideH, a.strideW))
                guard case .explicit(let t, let l, let b, let r) = a.padding,
                      t < a.kernelH, b < a.kernelH, l < a.kernelW, r < a.kernelW else { continue }
                newOperation = .maxPool2D(a)
            default:
                continue
            }
            var result = graph
            result.nodes[reader.node].operation = newOperation
            result.nodes[reader.node].inputs[0] = node.inputs[0]
            result.nodes.remove(at: padIndex)
            return result
        }
        return nil
    }

    /// The op's own padding (resolved for the padded input it sees now) plus the Pad's.
    private func combine(_ padding: Padding, _ extra: (Int, Int, Int, Int), height: Int, width: Int,
                         kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int) = (1, 1)) -> Padding {
        let own = padding.resolve(height: height, width: width, kernel: kernel, stride: stride, dilation: dilation)
        return .explicit(top: own.top + extra.0, left: own.left + extra.1,
                         bottom: own.bottom + extra.2, right: own.right + extra.3)
    }
}

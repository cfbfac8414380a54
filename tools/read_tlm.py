#!/usr/bin/env python3
"""Reads a torchlet model file (.tlm), checks its CRC and prints its tensor table.

A second implementation of docs/model-format.md, in plain Python (standard library only),
to show the spec is enough to read the format without torchlet:

    python3 tools/read_tlm.py model.tlm          # summary and tensor table
    python3 tools/read_tlm.py --json model.tlm   # the same as JSON (used by the tests)
"""
import json, struct, sys, zlib

# Postcard types of the header records (docs/model-format.md, "Records"). A struct is a list
# of (field, type); an enum is a list of (variant, type or None) indexed by its varint tag.
ARR3, ARR4 = ['usize'] * 3, ['usize'] * 4
TYPES = {
    'PaddingMode': ('enum', [('Zeros', None), ('Reflect', None), ('Replicate', None), ('Circular', None)]),
    'Padding': ('enum', [('Explicit', ARR3), ('Same', None), ('Valid', None)]),
    'Conv': ('struct', [('dims', 'u8'), ('in_channels', 'usize'), ('out_channels', 'usize'), ('kernel_size', ARR3),
                        ('stride', ARR3), ('padding', 'Padding'), ('dilation', ARR3), ('groups', 'usize'),
                        ('bias', 'bool'), ('padding_mode', 'PaddingMode')]),
    'ConvTranspose': ('struct', [('in_channels', 'usize'), ('out_channels', 'usize'), ('kernel_size', ARR3),
                                 ('stride', ARR3), ('padding', ARR3), ('output_padding', ARR3), ('groups', 'usize'),
                                 ('bias', 'bool'), ('dilation', ARR3)]),
    'MaxPool': ('struct', [('dims', 'u8'), ('kernel_size', ARR3), ('stride', ARR3), ('padding', ARR3),
                           ('dilation', ARR3), ('ceil_mode', 'bool'), ('return_indices', 'bool')]),
    'MaxUnpool': ('struct', [('kernel_size', ARR3), ('stride', ARR3), ('padding', ARR3)]),
    'AvgPool': ('struct', [('dims', 'u8'), ('kernel_size', ARR3), ('stride', ARR3), ('padding', ARR3),
                           ('ceil_mode', 'bool'), ('count_include_pad', 'bool')]),
    'Adaptive': ('struct', [('dims', 'u8'), ('output_size', ARR3)]),
    'Pad2d': ('struct', [('mode', 'PaddingMode'), ('padding', ARR4)]),
    'BatchNorm': ('struct', [('dims', 'u8'), ('num_features', 'usize'), ('eps', 'f32'), ('momentum', 'optf32'),
                             ('affine', 'bool'), ('track_running_stats', 'bool')]),
    'Linear': ('struct', [('in_features', 'usize'), ('out_features', 'usize'), ('bias', 'bool')]),
    'Bilinear': ('struct', [('in1_features', 'usize'), ('in2_features', 'usize'), ('out_features', 'usize'), ('bias', 'bool')]),
    'Op': ('enum', [('Conv', 'Conv'), ('ConvTranspose', 'ConvTranspose'), ('MaxPool', 'MaxPool'), ('MaxUnpool', 'MaxUnpool'),
                    ('AvgPool', 'AvgPool'), ('AdaptiveAvgPool', 'Adaptive'), ('AdaptiveMaxPool', 'Adaptive'), ('Pad2d', 'Pad2d'),
                    ('ReLU', None), ('LeakyReLU', 'f32'), ('Sigmoid', None), ('Tanh', None), ('Softmax', 'i8'),
                    ('LogSoftmax', 'i8'), ('BatchNorm', 'BatchNorm'), ('Dropout', 'f32'), ('Linear', 'Linear'),
                    ('Identity', None), ('Flatten', None)]),
    'Merge': ('enum', [('Add', None), ('Concat', None), ('Bilinear', 'Bilinear')]),
    'Kind': ('enum', [('Op', 'Op'), ('Sequential', 'u32'), ('Merge', 'MergeFields')]),
    'MergeFields': ('struct', [('merge', 'Merge'), ('a', 'u32'), ('b', 'u32')]),
    'Layer': ('struct', [('name', 'str'), ('kind', 'Kind')]),
    'Meta': ('struct', [('name', 'str'), ('input', 'dims'), ('classes', 'u32'), ('blocks', 'u32'), ('layers', 'u32'), ('tensors', 'u32')]),
    'Tensor': ('struct', [('name', 'str'), ('role', 'u8'), ('dtype', 'u8'), ('shape', 'dims'), ('offset', 'u64'), ('numel', 'u64')]),
    'Optimizer': ('enum', [('None', None),
                           ('Sgd', [('lr', 'f32'), ('momentum', 'f32'), ('dampening', 'f32'), ('weight_decay', 'f32'), ('nesterov', 'bool')]),
                           ('Adam', [('lr', 'f32'), ('beta1', 'f32'), ('beta2', 'f32'), ('eps', 'f32'), ('weight_decay', 'f32'),
                                     ('amsgrad', 'bool'), ('decoupled_weight_decay', 'bool')])]),
    'Train': ('struct', [('epoch', 'u32'), ('step', 'u64'), ('rng', ['u64', 'u64']), ('best_metric', 'f32'),
                         ('optimizer', 'Optimizer'), ('optimizer_steps', 'u64')]),
}
ROLES = ['parameter', 'state', 'optimizer']


class Reader:
    def __init__(self, buf, pos, end):
        self.buf, self.pos, self.end = buf, pos, end

    def byte(self):
        if self.pos >= self.end:
            raise ValueError('record runs past the header at byte %d' % self.pos)
        self.pos += 1
        return self.buf[self.pos - 1]

    def varint(self):  # unsigned LEB128
        out, shift = 0, 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            if b < 0x80:
                return out
            shift += 7

    def take(self, n):
        if self.pos + n > self.end:
            raise ValueError('record runs past the header at byte %d' % self.pos)
        self.pos += n
        return self.buf[self.pos - n:self.pos]

    def read(self, t):
        if isinstance(t, list):  # a tuple, an array, or a struct's fields
            if t and isinstance(t[0], tuple):
                return {name: self.read(ft) for name, ft in t}
            return [self.read(x) for x in t]
        if t in ('usize', 'u32', 'u64'):
            return self.varint()
        if t == 'u8':
            return self.byte()
        if t == 'i8':
            return struct.unpack('<b', bytes([self.byte()]))[0]
        if t == 'i32':  # zigzag varint
            v = self.varint()
            return (v >> 1) ^ -(v & 1)
        if t == 'bool':
            b = self.byte()
            if b > 1:
                raise ValueError('bad bool at byte %d' % (self.pos - 1))
            return bool(b)
        if t == 'f32':
            return struct.unpack('<f', self.take(4))[0]
        if t == 'optf32':
            return self.read('f32') if self.read('bool') else None
        if t == 'str':
            return self.take(self.varint()).decode('utf-8')
        if t == 'dims':
            return [self.varint() for _ in range(self.varint())]
        kind, body = TYPES[t]
        if kind == 'struct':
            return self.read(body)
        tag = self.varint()
        name, inner = body[tag]
        return name if inner is None else {name: self.read(inner)}


def align64(n):
    return (n + 63) // 64 * 64


def parse(buf):
    if buf[:8] != b'TORCHLET':
        raise ValueError('bad magic')
    if len(buf) < 28:
        raise ValueError('truncated')
    version, flags, hlen, doff, dlen = struct.unpack_from('<HHIII', buf, 8)
    if version not in (1, 2) or flags & ~(15 if version >= 2 else 7) or doff % 64 or dlen % 4 or doff != align64(24 + hlen):
        raise ValueError('bad fixed header')
    if len(buf) != doff + dlen + 4:
        raise ValueError('file length %d, expected %d' % (len(buf), doff + dlen + 4))
    (crc,) = struct.unpack_from('<I', buf, len(buf) - 4)
    if zlib.crc32(buf[:len(buf) - 4]) != crc:
        raise ValueError('CRC mismatch')
    r = Reader(buf, 24, 24 + hlen)
    meta = r.read('Meta')
    classes = [r.read('str') for _ in range(meta['classes'])]
    blocks = []
    for _ in range(meta['blocks']):
        blocks.append([r.read('Layer') for _ in range(r.varint())])
    tensors = []
    for _ in range(meta['tensors']):
        t = r.read('Tensor')
        start = doff + t['offset']
        data = buf[start:start + 4 * t['numel']]
        t['role'] = ROLES[t['role']]
        t['sum'] = sum(struct.unpack('<%df' % t['numel'], data))
        tensors.append(t)
    train = r.read('Train') if flags & 1 else None
    run = r.read('str') if flags & 4 else None
    int8 = None
    if flags & 8:  # version 2: an int8 model (docs/model-format.md section 10)
        int8 = {k: r.read(t) for k, t in [('input_scale', 'f32'), ('input_zero_point', 'i32'), ('nodes', 'u32'),
                                           ('weights', 'u32'), ('channels', 'u32')]}
        int8['nodes'] = [{k: r.read(t) for k, t in [('scale', 'f32'), ('zero_point', 'i32'), ('act_min', 'i8'),
                                                     ('act_max', 'i8')]} for _ in range(int8['nodes'])]
        if dlen != 12 * int8['channels'] + (int8['weights'] + 3) // 4 * 4:
            raise ValueError('int8 data length %d does not match the int8 record' % dlen)
    if r.pos != 24 + hlen:
        raise ValueError('header records end at %d, header ends at %d' % (r.pos, 24 + hlen))
    return {'version': version, 'flags': flags, 'crc': crc, 'size': len(buf), 'name': meta['name'],
            'input': meta['input'], 'classes': classes, 'blocks': blocks, 'tensors': tensors, 'train_state': train,
            'run': run, 'int8': int8}


def main(argv):
    as_json = '--json' in argv
    paths = [a for a in argv if a != '--json']
    if len(paths) != 1:
        sys.exit(__doc__)
    with open(paths[0], 'rb') as f:
        m = parse(f.read())
    if as_json:
        print(json.dumps(m, indent=1))
        return
    print('%s: torchlet model file v%d, %d bytes, CRC-32 %08x ok' % (paths[0], m['version'], m['size'], m['crc']))
    print('model %r, input %s, %d layer records in %d blocks%s' % (m['name'], m['input'], sum(map(len, m['blocks'])),
          len(m['blocks']), ', state dict' if m['flags'] & 2 else ''))
    if m['classes']:
        print('classes: ' + ', '.join(m['classes']))
    if m['int8']:
        q = m['int8']
        print('int8 model: input scale %.6g zero point %d, %d node records, %d weights, %d channels' % (
            q['input_scale'], q['input_zero_point'], len(q['nodes']), q['weights'], q['channels']))
    for t in m['tensors']:
        print('  %-40s %-9s %-18s offset %-8d sum %.6g' % (t['name'], t['role'], t['shape'], t['offset'], t['sum']))
    if m['train_state']:
        print('training state: %s' % m['train_state'])
    if m['run']:
        print('run record: %s' % m['run'])


if __name__ == '__main__':
    main(sys.argv[1:])

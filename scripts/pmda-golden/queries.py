#!/usr/bin/python3
# Asks a running pmcd the questions whose PDUs pmda/__golden__ records, one
# PMAPI call at a time, writing "# <label>" into every transcript before each
# call so the PDUs can be told apart. Run by capture.sh (PCP's own Python
# binding: libpcp does the talking, this script only chooses the calls).
#   queries.py TRANSCRIPT... (the tee-agent transcripts to mark)
import ctypes
import sys

from pcp import pmapi
from cpmapi import (PM_CONTEXT_HOST, PM_TEXT_ONELINE, PM_TEXT_HELP, PM_TEXT_PMID, PM_TEXT_INDOM)

transcripts = sys.argv[1:]
LIB = pmapi.LIBPCP


def mark(label):
    for path in transcripts:
        with open(path, 'a') as f:
            f.write('# %s\n' % label)


def pmid(domain, cluster, item):
    return pmapi.pmContext.pmID_build(domain, cluster, item)


def indom(domain, serial):
    return pmapi.pmContext.pmInDom_build(domain, serial)


ctx = pmapi.pmContext(PM_CONTEXT_HOST, 'local:')


def call(label, fn):
    mark(label)
    try:
        out = fn()
        print('%s: %r' % (label, out))
    except pmapi.pmErr as err:
        print('%s: error %s' % (label, err))


def desc(p):
    d = ctx.pmLookupDesc(p)
    return (d.contents.type, d.contents.sem, hex(d.contents.indom))


def text(ident, kind):
    buf = ctypes.c_char_p()
    if kind & PM_TEXT_INDOM:
        sts = LIB.pmLookupInDomText(ident, kind & ~PM_TEXT_INDOM, ctypes.byref(buf))
    else:
        sts = LIB.pmLookupText(ident, kind & ~PM_TEXT_PMID, ctypes.byref(buf))
    if sts < 0:
        raise pmapi.pmErr(sts)
    return buf.value


def lookup_inst(ind, name):
    sts = LIB.pmLookupInDom(ind, name.encode())
    if sts < 0:
        raise pmapi.pmErr(sts)
    return sts


def name_inst(ind, inst):
    buf = ctypes.c_char_p()
    sts = LIB.pmNameInDom(ind, inst, ctypes.byref(buf))
    if sts < 0:
        raise pmapi.pmErr(sts)
    return buf.value


def fetch(pmids):
    result = ctx.pmFetch((ctypes.c_uint * len(pmids))(*pmids))
    out = [(result.contents.get_pmid(i), result.contents.get_numval(i)) for i in range(result.contents.numpmid)]
    ctx.pmFreeResult(result)
    return out


def profile(ind, insts):
    LIB.pmDelProfile(ind, 0, None)
    arr = (ctypes.c_int * len(insts))(*insts)
    sts = LIB.pmAddProfile(ind, len(insts), arr)
    if sts < 0:
        raise pmapi.pmErr(sts)


def all_profile():
    LIB.pmAddProfile(0xffffffff, 0, None)


# ---- the root agent (domain 1): pmdaroot ----
ROOT = [pmid(1, 0, i) for i in range(7)]
for i, p in enumerate(ROOT):
    call('root desc 1.0.%d' % i, lambda p=p: desc(p))
call('root desc 1.0.99 (no such item)', lambda: desc(pmid(1, 0, 99)))
call('root desc 1.3.0 (no such cluster)', lambda: desc(pmid(1, 3, 0)))
for i, p in enumerate(ROOT):
    call('root text oneline 1.0.%d' % i, lambda p=p: text(p, PM_TEXT_PMID | PM_TEXT_ONELINE))
    call('root text help 1.0.%d' % i, lambda p=p: text(p, PM_TEXT_PMID | PM_TEXT_HELP))
call('root text oneline indom 1.0', lambda: text(indom(1, 0), PM_TEXT_INDOM | PM_TEXT_ONELINE))
call('root text help indom 1.0', lambda: text(indom(1, 0), PM_TEXT_INDOM | PM_TEXT_HELP))
call('root text oneline 1.0.99 (no such item)', lambda: text(pmid(1, 0, 99), PM_TEXT_PMID | PM_TEXT_ONELINE))
call('root text oneline indom 1.7 (no such indom)', lambda: text(indom(1, 7), PM_TEXT_INDOM | PM_TEXT_ONELINE))
call('root instances of indom 1.0', lambda: ctx.pmGetInDom(indom=indom(1, 0)))
insts, names = ctx.pmGetInDom(indom=indom(1, 0))
if insts:
    call('root name of instance %d' % insts[0], lambda: name_inst(indom(1, 0), insts[0]))
    call('root instance named %s' % names[0], lambda: lookup_inst(indom(1, 0), names[0]))
call('root name of instance 999999 (no such instance)', lambda: name_inst(indom(1, 0), 999999))
call('root instance named nosuch (no such instance)', lambda: lookup_inst(indom(1, 0), 'nosuch'))
call('root instances of indom 1.7 (no such indom)', lambda: ctx.pmGetInDom(indom=indom(1, 7)))
call('root fetch all seven', lambda: fetch(ROOT))
call('root fetch 1.0.0 and 1.0.99 (no such item)', lambda: fetch([pmid(1, 0, 0), pmid(1, 0, 99)]))
if insts:
    mark('root profile: only instance %d' % insts[0])
    profile(indom(1, 0), [insts[0]])
    call('root fetch all seven with that profile', lambda: fetch(ROOT))
    all_profile()
    call('root fetch all seven, profile back to all', lambda: fetch(ROOT))
call('root labels of 1.0.0', lambda: ctx.pmLookupLabels(pmid(1, 0, 0)))
call('root instance labels of indom 1.0', lambda: ctx.pmGetInstancesLabels(indom(1, 0)))

# ---- pmdasample (domain 29): every value type, labels, dynamic names ----
def sample(name):
    return ctx.pmLookupName(name)[0]


SAMPLE_NAMES = ['sample.long.one', 'sample.ulong.one', 'sample.longlong.one', 'sample.ulonglong.one',
                'sample.float.one', 'sample.double.one', 'sample.string.hullo', 'sample.aggregate.hullo',
                'sample.colour', 'sample.long.write_me', 'sample.seconds']
for name in SAMPLE_NAMES:
    call('sample desc %s' % name, lambda name=name: desc(sample(name)))
    call('sample text oneline %s' % name, lambda name=name: text(sample(name), PM_TEXT_PMID | PM_TEXT_ONELINE))
    call('sample text help %s' % name, lambda name=name: text(sample(name), PM_TEXT_PMID | PM_TEXT_HELP))
call('sample fetch every type', lambda: fetch([sample(n) for n in SAMPLE_NAMES]))
colour = ctx.pmLookupDesc(sample('sample.colour')).contents.indom
call('sample instances of the colour indom', lambda: ctx.pmGetInDom(indom=colour))
call('sample instance named red', lambda: lookup_inst(colour, 'red'))
call('sample name of instance 1', lambda: name_inst(colour, 1))
mark('sample profile: only instance 1 of colour')
profile(colour, [1])
call('sample fetch colour with that profile', lambda: fetch([sample('sample.colour')]))
all_profile()
call('sample labels of sample.colour', lambda: ctx.pmLookupLabels(sample('sample.colour')))
call('sample instance labels of colour', lambda: ctx.pmGetInstancesLabels(colour))
call('sample children of sample.secret', lambda: ctx.pmGetChildren('sample.secret'))
call('sample children and status of sample.secret', lambda: ctx.pmGetChildrenStatus('sample.secret'))
call('sample name to pmid sample.secret.foo.bar.max.redirect', lambda: ctx.pmLookupName('sample.secret.foo.bar.max.redirect'))
call('sample pmid to names of sample.secret.foo.bar.max.redirect',
     lambda: ctx.pmNameAll(ctx.pmLookupName('sample.secret.foo.bar.max.redirect')[0]))
call('sample traverse sample.secret', lambda: ctx.pmTraversePMNS('sample.secret', lambda n: None))
mark('end of queries')

"""
Prints the reference values in test/search-tpe.test.ts from hyperopt's own tpe.py: run
`git show HEAD:hyperopt/tpe.py > /tmp/hp_tpe.py` in a clone of github.com/hyperopt/hyperopt (values recorded at
commit c49ad148201c81c6ad1b43730ef4d0912734aa37), then `python3 bench/hyperopt_fixtures.py /tmp/hp_tpe.py`.
The pyll decorators are stubbed as the identity, so the numpy functions run as written.
"""
import numpy as np, re, types, sys
src = open(sys.argv[1] if len(sys.argv) > 1 else '/tmp/hp_tpe.py').read()
# stub the pyll machinery: decorators become identity
src = re.sub(r'^from \.[\w.]* import .*$', '', src, flags=re.M)
src = re.sub(r'^from \. import .*$', '', src, flags=re.M)
class Scope:
    def define(self, f): return f
    def define_info(self, **k): return lambda f: f
scope = Scope()
g = {'scope': scope, 'implicit_stochastic': lambda f: f, '__name__': 'hp'}
exec(compile(src, 'tpe.py', 'exec'), g)
np.set_printoptions(precision=17)
def show(name, v): print(name, repr([float(x) for x in np.atleast_1d(v)]))
w,m,s = g['adaptive_parzen_normal'](np.array([0.3, 0.9, 0.1, 0.5]), 1.0, 0.5, 1.0)
show('apn4_w', w); show('apn4_m', m); show('apn4_s', s)
w,m,s = g['adaptive_parzen_normal'](np.array([0.7]), 1.0, 0.5, 1.0)
show('apn1_w', w); show('apn1_m', m); show('apn1_s', s)
obs = np.array([((i * 37) % 29) / 29.0 for i in range(30)])
w,m,s = g['adaptive_parzen_normal'](obs, 1.0, 0.5, 1.0)
show('apn30_w', w); show('apn30_m', m); show('apn30_s', s)
show('lf30', g['linear_forgetting_weights'](30, 25))
w,m,s = g['adaptive_parzen_normal'](np.array([0.3, 0.9, 0.1, 0.5]), 1.0, 0.5, 1.0)
show('gmm', g['GMM1_lpdf'](np.array([0.2, 0.95]), w, m, s, low=0.0, high=1.0))
show('gmmq', g['GMM1_lpdf'](np.array([0.2, 1.0]), w, m, s, low=0.0, high=1.0, q=0.1))
lw,lm,ls = g['adaptive_parzen_normal'](np.log(np.array([1e-4, 3e-3, 2e-5])), 1.0, 0.5*(-12-5), 7.0)
show('lgmm', g['LGMM1_lpdf'](np.array([1e-4, 5e-6]), lw, lm, ls, low=-12, high=-5))
lw,lm,ls = g['adaptive_parzen_normal'](np.log(np.array([32., 64., 128.])), 1.0, 0.5*(np.log(16)+np.log(256)), np.log(256)-np.log(16))
show('lgmmq', g['LGMM1_lpdf'](np.array([48., 256.]), lw, lm, ls, low=np.log(16), high=np.log(256), q=16))
show('cat', g['tpe_cat_pseudocounts'](np.bincount([0,2,2,1,2], minlength=3).astype(float), 1.0, np.ones(3)/3, (1,)))

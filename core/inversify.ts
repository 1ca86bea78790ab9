/**
 * `croot/inversify`: the inversify croot itself runs on. An engine plugin
 * makes its ContainerModule and decorates its classes with these, so its
 * module is one croot's container accepts (a second copy of inversify would
 * be a different class). A plugin depends on croot as a peer, not on
 * inversify.
 */
export * from 'inversify';
